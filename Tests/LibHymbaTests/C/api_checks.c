/*
 * api_checks.c - libhymba's contract from C: NULL pointers, freed handles, wrong-order and
 * reentrant calls, buffer-size conventions, every status a program can provoke, the context
 * accounting of hymba_generate, and the thread-local last error.
 *
 *     api_checks MODEL GARBAGE_FILE CORRUPT_MODEL NO_TOKENIZER_MODEL
 *
 * Prints each failed check and exits 1 if any failed; "N checks passed" and 0 otherwise.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <hymba.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"

/* The status, and the last error names the function and contains `needle`. */
#define CHECK_STATUS(call, status, needle)                                                    \
    do {                                                                                      \
        hymba_status st_ = (call);                                                            \
        checks++;                                                                             \
        if (st_ != (status) || strstr(hymba_last_error(), (needle)) == NULL) {                \
            failures++;                                                                       \
            fprintf(stderr, "FAILED line %d: %s gave %d (%s), expected %d with \"%s\"; "      \
                    "last error: %s\n", __LINE__, #call, (int)st_, hymba_status_string(st_),  \
                    (int)(status), (needle), hymba_last_error());                             \
        }                                                                                     \
    } while (0)

struct recording {
    char text[4096];
    size_t len;
    int tokens;          /* callbacks with token >= 0 */
    int stop_after;      /* return non-zero at this many tokens (0: never) */
    hymba_context *self; /* the generating context, for the reentrancy check */
    hymba_status reentrant;
};

static int32_t record(const char *piece, int32_t token, void *user_data) {
    struct recording *r = user_data;
    size_t n = strlen(piece);
    if (r->len + n < sizeof r->text) {
        memcpy(r->text + r->len, piece, n);
        r->len += n;
        r->text[r->len] = '\0';
    }
    if (token >= 0) r->tokens++;
    if (r->self != NULL) {
        int32_t id = 1;
        r->reentrant = hymba_eval(r->self, &id, 1, NULL);
        r->self = NULL;
    }
    return r->stop_after > 0 && r->tokens >= r->stop_after;
}

static void *other_thread_error(void *arg) {
    const char **out = arg;
    *out = strdup(hymba_last_error());
    return NULL;
}

/* Threads of this process (Linux: the entries of /proc/self/task). */
static int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    if (d == NULL) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static hymba_sampling_params greedy(int32_t max_tokens) {
    hymba_sampling_params p = hymba_sampling_default_params();
    p.temperature = 0;
    p.max_tokens = max_tokens;
    return p;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL GARBAGE_FILE CORRUPT_MODEL NO_TOKENIZER_MODEL\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    const char *prompt = "def fibonacci(n):";

    /* Version and statuses. */
    char version[64];
    snprintf(version, sizeof version, "%d.%d.%d", HYMBA_VERSION_MAJOR, HYMBA_VERSION_MINOR, HYMBA_VERSION_PATCH);
    CHECK(strcmp(hymba_version(), version) == 0);
    CHECK(hymba_last_error() != NULL && strcmp(hymba_last_error(), "") == 0);
    CHECK(HYMBA_OK == 0 && HYMBA_ERR_INVALID_ARGUMENT == 1 && HYMBA_ERR_INTERNAL == 9);
    CHECK(strcmp(hymba_status_string(HYMBA_ERR_CONTEXT_FULL), "context full") == 0);
    CHECK(strcmp(hymba_status_string((hymba_status)42), "unknown status") == 0);

    /* Opening: NULLs, bad params, and one file for each way a file can be refused. */
    hymba_model *model = NULL;
    hymba_model_params mp = hymba_model_default_params();
    CHECK(mp.memory_budget_bytes == 0 && mp.threads == 0 && mp.verify_checksums == 1);
    CHECK_STATUS(hymba_model_open(NULL, &mp, &model), HYMBA_ERR_INVALID_ARGUMENT, "hymba_model_open: path is NULL");
    CHECK_STATUS(hymba_model_open(path, &mp, NULL), HYMBA_ERR_INVALID_ARGUMENT, "out is NULL");
    mp.threads = -1;
    CHECK_STATUS(hymba_model_open(path, &mp, &model), HYMBA_ERR_INVALID_ARGUMENT, "threads -1");
    mp.threads = 257;
    CHECK_STATUS(hymba_model_open(path, &mp, &model), HYMBA_ERR_INVALID_ARGUMENT, "threads 257 must be in 0…256");
    mp.threads = 0;
    mp.memory_budget_bytes = UINT64_MAX;
    CHECK_STATUS(hymba_model_open(path, &mp, &model), HYMBA_ERR_INVALID_ARGUMENT, "memory budget 18446744073709551615 bytes");
    /* A budget below the smallest plan: refused before loading, with the breakdown and the
     * smallest budget that would fit (used again below). */
    mp.memory_budget_bytes = 1u << 20;
    CHECK_STATUS(hymba_model_open(path, &mp, &model), HYMBA_ERR_MEMORY_BUDGET, "the smallest budget that would fit: ");
    CHECK(strstr(hymba_last_error(), "memory budget 1.00 MiB (1048576 bytes) is too small") != NULL);
    CHECK(strstr(hymba_last_error(), "\n  KV caches ") != NULL);
    const char *fit = strstr(hymba_last_error(), "the smallest budget that would fit: ");
    int smallest_mib = 0;
    CHECK(fit != NULL && sscanf(fit, "the smallest budget that would fit: %dMiB", &smallest_mib) == 1 && smallest_mib > 1);
    mp.memory_budget_bytes = 0;
    CHECK_STATUS(hymba_model_open("/nonexistent/model.hymba", &mp, &model), HYMBA_ERR_IO, "/nonexistent/model.hymba");
    CHECK_STATUS(hymba_model_open(argv[2], &mp, &model), HYMBA_ERR_FORMAT, "not a hymba model file");
    CHECK_STATUS(hymba_model_open(argv[3], &mp, &model), HYMBA_ERR_CHECKSUM, "is corrupt");
    CHECK_STATUS(hymba_model_open(argv[4], &mp, &model), HYMBA_ERR_UNSUPPORTED, "no tokenizer");
    CHECK(model == NULL);
    CHECK(hymba_model_open(path, NULL, &model) == HYMBA_OK && model != NULL);

    /* threads reaches the runtime: a context starts threads - 1 workers, joined when freed. */
    {
        hymba_model *three = NULL;
        hymba_context *c3 = NULL;
        mp.threads = 3;
        int before = thread_count();
        CHECK(hymba_model_open(path, &mp, &three) == HYMBA_OK);
        CHECK(hymba_context_new(three, NULL, &c3) == HYMBA_OK);
        CHECK(thread_count() == before + 2);
        hymba_context_free(c3);
        hymba_model_free(three);
        CHECK(thread_count() == before);
        mp.threads = 0;
    }

    /* The last error is per thread: another thread has none. */
    const char *seen = NULL;
    pthread_t t;
    pthread_create(&t, NULL, other_thread_error, &seen);
    pthread_join(t, NULL);
    CHECK(seen != NULL && strcmp(seen, "") == 0);
    free((void *)seen);
    CHECK(strstr(hymba_last_error(), "no tokenizer") != NULL);

    /* Model queries. */
    int32_t vocab = hymba_model_vocab_size(model);
    int32_t max_ctx = hymba_model_context_length(model);
    CHECK(vocab == 32001 && max_ctx == 1024);
    CHECK(hymba_model_vocab_size(NULL) == -1 && hymba_model_context_length(NULL) == -1);
    CHECK(hymba_model_vocab_size((const hymba_model *)&checks) == -1);
    CHECK(strstr(hymba_last_error(), "is not a live model") != NULL);

    /* Tokenize: size query, too small, exact; with and without BOS. */
    int32_t n = -1, ids[64];
    CHECK_STATUS(hymba_tokenize(NULL, prompt, 1, ids, 64, &n), HYMBA_ERR_INVALID_ARGUMENT, "model is NULL");
    CHECK_STATUS(hymba_tokenize(model, NULL, 1, ids, 64, &n), HYMBA_ERR_INVALID_ARGUMENT, "text is NULL");
    CHECK_STATUS(hymba_tokenize(model, prompt, 1, ids, 64, NULL), HYMBA_ERR_INVALID_ARGUMENT, "n_out is NULL");
    CHECK_STATUS(hymba_tokenize(model, prompt, 1, NULL, 4, &n), HYMBA_ERR_INVALID_ARGUMENT, "ids is NULL");
    CHECK_STATUS(hymba_tokenize(model, prompt, 1, ids, -1, &n), HYMBA_ERR_INVALID_ARGUMENT, "negative");
    CHECK_STATUS(hymba_tokenize(model, prompt, 1, NULL, 0, &n), HYMBA_ERR_INVALID_ARGUMENT, "needs 8");
    CHECK(n == 8);
    ids[0] = -7;
    CHECK_STATUS(hymba_tokenize(model, prompt, 1, ids, 7, &n), HYMBA_ERR_INVALID_ARGUMENT, "holds 7 tokens");
    CHECK(n == 8 && ids[0] == -7);
    CHECK(hymba_tokenize(model, prompt, 1, ids, 8, &n) == HYMBA_OK && n == 8 && ids[0] == 1);
    int32_t no_bos[64], n_no_bos = 0;
    CHECK(hymba_tokenize(model, prompt, 0, no_bos, 64, &n_no_bos) == HYMBA_OK && n_no_bos == 7);
    CHECK(memcmp(no_bos, ids + 1, 7 * sizeof(int32_t)) == 0);
    const int32_t n_prompt = n;

    /* Detokenize: the round trip, the length convention, bad ids. */
    char buf[256];
    size_t len = 0;
    CHECK(hymba_detokenize(model, ids, n, buf, sizeof buf, &len) == HYMBA_OK);
    CHECK(strcmp(buf, prompt) == 0 && len == strlen(prompt));
    CHECK_STATUS(hymba_detokenize(model, ids, n, NULL, 0, &len), HYMBA_ERR_INVALID_ARGUMENT, "needs 18 with its NUL");
    CHECK(len == strlen(prompt));
    buf[0] = 'x';
    CHECK_STATUS(hymba_detokenize(model, ids, n, buf, len, &len), HYMBA_ERR_INVALID_ARGUMENT, "holds 17 bytes");
    CHECK(buf[0] == 'x');
    CHECK(hymba_detokenize(model, ids, n, buf, len + 1, &len) == HYMBA_OK && strcmp(buf, prompt) == 0);
    CHECK(hymba_detokenize(model, NULL, 0, buf, 1, &len) == HYMBA_OK && len == 0 && buf[0] == '\0');
    int32_t bad[3] = {1, 32001, 5};
    CHECK_STATUS(hymba_detokenize(model, bad, 3, buf, sizeof buf, &len), HYMBA_ERR_INVALID_ARGUMENT, "token id 32001 at index 1");
    bad[1] = -1;
    CHECK_STATUS(hymba_detokenize(model, bad, 3, buf, sizeof buf, &len), HYMBA_ERR_INVALID_ARGUMENT, "token id -1 at index 1");
    CHECK_STATUS(hymba_detokenize(model, NULL, 2, buf, sizeof buf, &len), HYMBA_ERR_INVALID_ARGUMENT, "ids is NULL");
    CHECK_STATUS(hymba_detokenize(model, ids, -1, buf, sizeof buf, &len), HYMBA_ERR_INVALID_ARGUMENT, "negative");
    CHECK_STATUS(hymba_detokenize(model, ids, n, buf, sizeof buf, NULL), HYMBA_ERR_INVALID_ARGUMENT, "len_out is NULL");
    CHECK_STATUS(hymba_detokenize(model, ids, n, NULL, 8, &len), HYMBA_ERR_INVALID_ARGUMENT, "buf is NULL");

    /* Contexts: bad params. */
    hymba_context *ctx = NULL;
    hymba_context_params cp = hymba_context_default_params();
    CHECK(cp.n_ctx == 0 && cp.kv_type == HYMBA_KV_AUTO);
    CHECK_STATUS(hymba_context_new(NULL, &cp, &ctx), HYMBA_ERR_INVALID_ARGUMENT, "model is NULL");
    CHECK_STATUS(hymba_context_new(model, &cp, NULL), HYMBA_ERR_INVALID_ARGUMENT, "out is NULL");
    cp.n_ctx = -1;
    CHECK_STATUS(hymba_context_new(model, &cp, &ctx), HYMBA_ERR_INVALID_ARGUMENT, "n_ctx -1");
    cp.n_ctx = max_ctx + 1;
    CHECK_STATUS(hymba_context_new(model, &cp, &ctx), HYMBA_ERR_INVALID_ARGUMENT, "context length 1025");
    cp.n_ctx = 0;
    cp.kv_type = 7;
    CHECK_STATUS(hymba_context_new(model, &cp, &ctx), HYMBA_ERR_INVALID_ARGUMENT, "kv_type 7");
    CHECK(ctx == NULL);
    CHECK(hymba_context_new(model, NULL, &ctx) == HYMBA_OK && ctx != NULL);
    CHECK(hymba_context_size(ctx) == max_ctx && hymba_context_n_tokens(ctx) == 0);
    CHECK(hymba_context_size(NULL) == -1 && hymba_context_n_tokens(NULL) == -1);

    /* Eval: NULLs, bad ids (nothing fed), logits of an empty context, then a real feed. */
    float *logits = malloc(sizeof(float) * (size_t)vocab);
    float *logits2 = malloc(sizeof(float) * (size_t)vocab);
    CHECK_STATUS(hymba_eval(NULL, ids, n, logits), HYMBA_ERR_INVALID_ARGUMENT, "hymba_eval: the context is NULL");
    CHECK_STATUS(hymba_eval(ctx, NULL, 3, logits), HYMBA_ERR_INVALID_ARGUMENT, "ids is NULL");
    CHECK_STATUS(hymba_eval(ctx, ids, -2, logits), HYMBA_ERR_INVALID_ARGUMENT, "negative");
    CHECK_STATUS(hymba_eval(ctx, NULL, 0, logits), HYMBA_ERR_INVALID_ARGUMENT, "the context is empty");
    CHECK(hymba_eval(ctx, NULL, 0, NULL) == HYMBA_OK);
    int32_t with_bad[3] = {1, 415, 99999};
    CHECK_STATUS(hymba_eval(ctx, with_bad, 3, logits), HYMBA_ERR_INVALID_ARGUMENT, "token id 99999 at index 2");
    CHECK(hymba_context_n_tokens(ctx) == 0);
    CHECK(hymba_eval(ctx, ids, n, logits) == HYMBA_OK && hymba_context_n_tokens(ctx) == n);
    CHECK(hymba_eval(ctx, NULL, 0, logits2) == HYMBA_OK && memcmp(logits, logits2, sizeof(float) * (size_t)vocab) == 0);
    /* The same ids one call at a time give the same final logits (one-row prefills). The
       multi-row eval runs the prefill kernels, which on AVX-512 VNNI builds round activations
       to 14 bits per 512 elements and re-express q8 weights on one scale per 512 elements:
       2.6e-3 apart on this model (1e-4 of the logits' range); a wrong kernel is off by O(1). */
    hymba_context *ctx2 = NULL;
    CHECK(hymba_context_new(model, NULL, &ctx2) == HYMBA_OK);
    for (int i = 0; i < n; i++) CHECK(hymba_eval(ctx2, ids + i, 1, i + 1 == n ? logits2 : NULL) == HYMBA_OK);
    float maxdiff = 0;
    for (int i = 0; i < vocab; i++) {
        float d = logits[i] - logits2[i];
        if (d < 0) d = -d;
        if (d > maxdiff) maxdiff = d;
    }
    CHECK(maxdiff < 1e-2f);

    /* Generation from what eval fed = generation from the prompt on a fresh context. */
    hymba_sampling_params sp = greedy(12);
    struct recording a = {0}, b = {0};
    CHECK_STATUS(hymba_generate(NULL, prompt, &sp, record, &a), HYMBA_ERR_INVALID_ARGUMENT, "the context is NULL");
    CHECK_STATUS(hymba_generate(ctx2, NULL, &sp, record, &a), HYMBA_ERR_INVALID_ARGUMENT, "prompt is NULL");
    CHECK(hymba_context_reset(ctx2) == HYMBA_OK && hymba_context_n_tokens(ctx2) == 0);
    CHECK(hymba_generate(ctx2, prompt, &sp, record, &a) == HYMBA_OK);
    CHECK(hymba_generate(ctx, "", &sp, record, &b) == HYMBA_OK);
    CHECK(a.tokens == 12 && b.tokens == 12 && a.len > 0 && strcmp(a.text, b.text) == 0);
    CHECK(hymba_context_n_tokens(ctx2) == n_prompt + 12);
    CHECK(hymba_generate(ctx2, prompt, NULL, NULL, NULL) == HYMBA_OK); /* default params, no callback */

    /* Sampling params out of range: nothing fed. */
    CHECK(hymba_context_reset(ctx2) == HYMBA_OK);
    hymba_sampling_params wrong = greedy(4);
    wrong.top_p = 0;
    CHECK_STATUS(hymba_generate(ctx2, prompt, &wrong, record, &a), HYMBA_ERR_INVALID_ARGUMENT, "top-p 0");
    CHECK(hymba_context_n_tokens(ctx2) == 0);

    /* Generating in two calls (4 + 8 tokens, the second with an empty prompt) gives the text
     * of one 12-token call: the last token of the first call is fed by the second. */
    struct recording p1 = {0}, p2 = {0};
    sp = greedy(4);
    CHECK(hymba_generate(ctx2, prompt, &sp, record, &p1) == HYMBA_OK);
    CHECK(hymba_context_n_tokens(ctx2) == n_prompt + 4);
    sp = greedy(8);
    CHECK(hymba_generate(ctx2, "", &sp, record, &p2) == HYMBA_OK);
    CHECK(hymba_context_n_tokens(ctx2) == n_prompt + 12);
    char joined[8192];
    snprintf(joined, sizeof joined, "%s%s", p1.text, p2.text);
    CHECK(strcmp(joined, a.text) == 0);

    /* The callback stops generation: HYMBA_ERR_CANCELLED, the context stays usable. */
    CHECK(hymba_context_reset(ctx2) == HYMBA_OK);
    struct recording c = {0};
    c.stop_after = 3;
    sp = greedy(12);
    CHECK_STATUS(hymba_generate(ctx2, prompt, &sp, record, &c), HYMBA_ERR_CANCELLED, "stopped by the callback");
    CHECK(c.tokens == 3 && strncmp(c.text, a.text, c.len) == 0);
    CHECK(hymba_context_n_tokens(ctx2) == n_prompt + 3);
    struct recording rest = {0};
    sp = greedy(9);
    CHECK(hymba_generate(ctx2, "", &sp, record, &rest) == HYMBA_OK);
    snprintf(joined, sizeof joined, "%s%s", c.text, rest.text);
    CHECK(strcmp(joined, a.text) == 0);

    /* A call into the generating context from its own callback is refused; generation goes on. */
    CHECK(hymba_context_reset(ctx2) == HYMBA_OK);
    struct recording r = {0};
    r.self = ctx2;
    r.reentrant = HYMBA_OK;
    sp = greedy(12);
    CHECK(hymba_generate(ctx2, prompt, &sp, record, &r) == HYMBA_OK);
    CHECK(r.reentrant == HYMBA_ERR_INVALID_ARGUMENT && strstr(hymba_last_error(), "busy") != NULL);
    CHECK(strcmp(r.text, a.text) == 0);

    /* A small context: a prompt that does not fit, eval past the end, generation filling it. */
    hymba_context *small = NULL;
    cp = hymba_context_default_params();
    cp.n_ctx = n_prompt + 5;
    CHECK(hymba_context_new(model, &cp, &small) == HYMBA_OK);
    int32_t many[64];
    for (int i = 0; i < 64; i++) many[i] = 415;
    CHECK_STATUS(hymba_eval(small, many, n_prompt + 6, logits), HYMBA_ERR_CONTEXT_FULL, "context full");
    CHECK(hymba_context_n_tokens(small) == 0);
    struct recording unused = {0};
    CHECK(hymba_generate(small, "def fibonacci(n): return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)", &sp,
                         record, &unused) == HYMBA_ERR_CONTEXT_FULL);
    CHECK(unused.tokens == 0 && unused.len == 0);
    CHECK(hymba_context_n_tokens(small) == 0);
    struct recording full = {0};
    sp = greedy(-1);
    CHECK_STATUS(hymba_generate(small, prompt, &sp, record, &full), HYMBA_ERR_CONTEXT_FULL, "filled all 13 tokens");
    CHECK(full.tokens == 6 && hymba_context_n_tokens(small) == n_prompt + 5);
    CHECK(strncmp(full.text, a.text, full.len) == 0);
    CHECK_STATUS(hymba_eval(small, many, 1, NULL), HYMBA_ERR_CONTEXT_FULL, "context full");
    CHECK_STATUS(hymba_generate(small, " x", &sp, record, &full), HYMBA_ERR_CONTEXT_FULL, "context full");
    CHECK(hymba_context_reset(small) == HYMBA_OK && hymba_eval(small, many, n_prompt + 5, NULL) == HYMBA_OK);

    /* Memory budget. A generous one: the same greedy text as without. */
    {
        hymba_model *budgeted = NULL;
        hymba_context *bc = NULL;
        hymba_model_params bp = hymba_model_default_params();
        bp.memory_budget_bytes = (uint64_t)1 << 30;
        CHECK(hymba_model_open(path, &bp, &budgeted) == HYMBA_OK);
        CHECK(hymba_context_new(budgeted, NULL, &bc) == HYMBA_OK);
        struct recording g = {0};
        sp = greedy(12);
        CHECK(hymba_generate(bc, prompt, &sp, record, &g) == HYMBA_OK && strcmp(g.text, a.text) == 0);
        hymba_context_free(bc);
        hymba_model_free(budgeted);

        /* Just above the smallest budget: contexts are admitted while they fit beside the
         * live ones, the next is refused with the plan; freeing one makes room again. */
        bp.memory_budget_bytes = (uint64_t)(smallest_mib + 1) << 20;
        CHECK(hymba_model_open(path, &bp, &budgeted) == HYMBA_OK);
        hymba_context *live[64];
        int admitted = 0;
        hymba_status refused = HYMBA_OK;
        while (admitted < 64 && (refused = hymba_context_new(budgeted, NULL, &live[admitted])) == HYMBA_OK) admitted++;
        CHECK(admitted >= 1 && admitted < 64 && refused == HYMBA_ERR_MEMORY_BUDGET);
        CHECK(strstr(hymba_last_error(), "hymba_context_new: memory budget ") != NULL);
        CHECK(strstr(hymba_last_error(), admitted == 1 ? "1 session (context) still alive" : "sessions (contexts) still alive") != NULL);
        CHECK(strstr(hymba_last_error(), "\n  KV caches ") != NULL);
        /* Freeing one makes room: a new one fits and generates the same text. */
        hymba_context_free(live[admitted - 1]);
        CHECK(hymba_context_new(budgeted, NULL, &live[admitted - 1]) == HYMBA_OK);
        struct recording h = {0};
        CHECK(hymba_generate(live[admitted - 1], prompt, &sp, record, &h) == HYMBA_OK && strcmp(h.text, a.text) == 0);
        for (int i = 0; i < admitted; i++) hymba_context_free(live[i]);
        hymba_model_free(budgeted);
    }

    /* Explicit KV types: q8 runs (within 0.1 logit of f32 on the fixtures: the runtime's tests). */
    {
        hymba_context *q8 = NULL;
        cp = hymba_context_default_params();
        cp.kv_type = HYMBA_KV_Q8;
        CHECK(hymba_context_new(model, &cp, &q8) == HYMBA_OK);
        struct recording q = {0};
        CHECK(hymba_generate(q8, prompt, &sp, record, &q) == HYMBA_OK && q.tokens > 0 && q.len > 0);
        hymba_context_free(q8);
    }

    /* Freed handles: refused, never dereferenced; double frees ignored. */
    hymba_context_free(small);
    CHECK_STATUS(hymba_eval(small, ids, 1, NULL), HYMBA_ERR_INVALID_ARGUMENT, "is not a live context");
    CHECK_STATUS(hymba_context_reset(small), HYMBA_ERR_INVALID_ARGUMENT, "is not a live context");
    CHECK(hymba_context_n_tokens(small) == -1);
    hymba_context_free(small);
    CHECK(strstr(hymba_last_error(), "hymba_context_free") != NULL);
    hymba_context_free(NULL);

    /* The model may be freed before its contexts: they keep it alive. */
    hymba_model_free(model);
    CHECK_STATUS(hymba_tokenize(model, prompt, 1, ids, 64, &n), HYMBA_ERR_INVALID_ARGUMENT, "is not a live model");
    CHECK_STATUS(hymba_context_new(model, NULL, &small), HYMBA_ERR_INVALID_ARGUMENT, "is not a live model");
    hymba_model_free(model);
    CHECK(strstr(hymba_last_error(), "hymba_model_free") != NULL);
    CHECK(hymba_context_reset(ctx) == HYMBA_OK);
    struct recording after = {0};
    sp = greedy(12);
    CHECK(hymba_generate(ctx, prompt, &sp, record, &after) == HYMBA_OK && strcmp(after.text, a.text) == 0);

    hymba_context_free(ctx);
    hymba_context_free(ctx2);
    hymba_model_free(NULL);
    free(logits);
    free(logits2);

    if (failures > 0) {
        fprintf(stderr, "%d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("%d checks passed\n", checks);
    return 0;
}
