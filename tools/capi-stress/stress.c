/*
 * stress.c - many contexts on one model, from several threads, for a while: built with
 * AddressSanitizer or ThreadSanitizer by tools/capi-stress/run.sh, which fails on any report.
 *
 *     stress MODEL SECONDS THREADS
 *
 * First, on one thread, the reference: each prompt's greedy tokens and last logits, and the
 * contract checks that must not be run while other threads make handles (a freed handle's
 * address may then be reused): calls on freed contexts and models, NULL everywhere, calls
 * in the wrong order, a memory budget nothing fits in. Then THREADS workers share one model
 * (opened with 2 kernel threads per context, so the contexts' thread pools run too) until
 * SECONDS have passed. Each keeps up to 4 contexts of random sizes and KV types (f16, f32,
 * q8), and in a random order creates, resets, frees, evaluates and generates on them; every
 * greedy result must equal the reference (same KV type) bit for bit.
 * All workers also hammer one shared context: each call on it either runs or is refused as
 * busy (HYMBA_ERR_INVALID_ARGUMENT), never anything else. Exits 0 and prints the counts
 * when every check held; 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L
#include <hymba.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROMPTS 3
#define GENERATED 8
#define SLOTS 4

static const char *prompts[PROMPTS] = {"def fibonacci(n):\n", "import os\nimport sys\n\n\nclass ", "x = [i * i for i in"};

struct reference {
    int32_t ids[64];
    int32_t n_ids;
    int32_t tokens[GENERATED];
    int n_tokens;
    float *logits; /* after the prompt */
};

/* Per KV type (f16 and q8 round the cached keys and values: their logits differ from f32's). */
#define KV_TYPES 3
static struct reference refs[KV_TYPES][PROMPTS];
static int32_t vocab;
static atomic_int failures;
static atomic_long contexts_made, evals, generations, tokens_out, resets, shared_runs, shared_refused, contract_checks;
static hymba_context *shared;
static double deadline;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Counts every failure, prints the first 20. */
#define FAIL(...)                                                              \
    do {                                                                       \
        if (atomic_fetch_add(&failures, 1) < 20) {                             \
            fprintf(stderr, "FAILED line %d: ", __LINE__);                     \
            fprintf(stderr, __VA_ARGS__);                                      \
            fprintf(stderr, " (last error: %s)\n", hymba_last_error());        \
        }                                                                      \
    } while (0)

#define EXPECT_STATUS(call, want)                                              \
    do {                                                                       \
        hymba_status st_ = (call);                                             \
        atomic_fetch_add(&contract_checks, 1);                                 \
        if (st_ != (want)) FAIL("%s gave %s, expected %s", #call,              \
                                hymba_status_string(st_), hymba_status_string(want)); \
    } while (0)

struct collected {
    int32_t tokens[GENERATED];
    int n;
};

static int32_t collect(const char *piece, int32_t token, void *user_data) {
    (void)piece;
    struct collected *c = user_data;
    if (token >= 0 && c->n < GENERATED) c->tokens[c->n++] = token;
    return 0;
}

static hymba_sampling_params greedy(void) {
    hymba_sampling_params sp = hymba_sampling_default_params();
    sp.temperature = 0;
    sp.max_tokens = GENERATED;
    return sp;
}

/* Feeds prompt p into an empty context with KV type kv, checks its logits, generates and
 * checks the tokens. */
static void run_prompt(hymba_context *ctx, int kv, int p, float *logits) {
    const struct reference *ref = &refs[kv][p];
    hymba_status st = hymba_eval(ctx, ref->ids, ref->n_ids, logits);
    atomic_fetch_add(&evals, 1);
    if (st != HYMBA_OK) { FAIL("eval of prompt %d: %s", p, hymba_status_string(st)); return; }
    if (memcmp(logits, ref->logits, sizeof(float) * (size_t)vocab) != 0) FAIL("prompt %d, kv %d: logits differ from the reference", p, kv);
    struct collected c = {.n = 0};
    hymba_sampling_params sp = greedy();
    st = hymba_generate(ctx, "", &sp, collect, &c);
    atomic_fetch_add(&generations, 1);
    atomic_fetch_add(&tokens_out, c.n);
    if (st != HYMBA_OK) { FAIL("generate after prompt %d: %s", p, hymba_status_string(st)); return; }
    if (c.n != ref->n_tokens || memcmp(c.tokens, ref->tokens, sizeof(int32_t) * (size_t)c.n) != 0)
        FAIL("prompt %d, kv %d: generated tokens differ from the reference", p, kv);
}

/* The single-threaded reference, and the contract checks that need a quiet process. */
static int prepare(const char *path) {
    hymba_model_params mp = hymba_model_default_params();
    mp.threads = 1;
    hymba_model *model = NULL;
    if (hymba_model_open(path, &mp, &model) != HYMBA_OK) { fprintf(stderr, "%s\n", hymba_last_error()); return 0; }
    vocab = hymba_model_vocab_size(model);
    for (int kv = 0; kv < KV_TYPES; kv++) {
        for (int p = 0; p < PROMPTS; p++) {
            struct reference *ref = &refs[kv][p];
            hymba_context *ctx = NULL;
            hymba_context_params cp = hymba_context_default_params();
            cp.kv_type = kv;
            ref->logits = malloc(sizeof(float) * (size_t)vocab);
            struct collected c = {.n = 0};
            hymba_sampling_params sp = greedy();
            if (hymba_tokenize(model, prompts[p], 1, ref->ids, 64, &ref->n_ids) != HYMBA_OK ||
                hymba_context_new(model, &cp, &ctx) != HYMBA_OK ||
                hymba_eval(ctx, ref->ids, ref->n_ids, ref->logits) != HYMBA_OK ||
                hymba_generate(ctx, "", &sp, collect, &c) != HYMBA_OK) {
                fprintf(stderr, "reference %d (kv %d): %s\n", p, kv, hymba_last_error());
                return 0;
            }
            memcpy(ref->tokens, c.tokens, sizeof c.tokens);
            ref->n_tokens = c.n;
            hymba_context_free(ctx);
        }
    }

    /* NULL and wrong-order calls: statuses, never a crash or a sanitizer report. */
    hymba_context *ctx = NULL, *freed = NULL;
    int32_t id = 1, n = 0;
    float *logits = malloc(sizeof(float) * (size_t)vocab);
    char text[64];
    size_t len = 0;
    hymba_sampling_params sp = greedy();
    EXPECT_STATUS(hymba_model_open(NULL, NULL, &model), HYMBA_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(hymba_model_open(path, NULL, NULL), HYMBA_ERR_INVALID_ARGUMENT);
    {
        hymba_model *tiny = NULL;
        hymba_model_params budget = hymba_model_default_params();
        budget.memory_budget_bytes = 1;                                            /* nothing fits */
        EXPECT_STATUS(hymba_model_open(path, &budget, &tiny), HYMBA_ERR_MEMORY_BUDGET);
        if (tiny != NULL) FAIL("a refused open gave a model");
    }
    EXPECT_STATUS(hymba_context_new(NULL, NULL, &ctx), HYMBA_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(hymba_context_new(model, NULL, NULL), HYMBA_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(hymba_tokenize(NULL, "x", 1, &id, 1, &n), HYMBA_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(hymba_tokenize(model, NULL, 1, &id, 1, &n), HYMBA_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(hymba_tokenize(model, "x", 1, NULL, 4, &n), HYMBA_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(hymba_detokenize(model, NULL, 1, text, sizeof text, &len), HYMBA_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(hymba_detokenize(model, &id, 1, NULL, 4, &len), HYMBA_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(hymba_eval(NULL, &id, 1, logits), HYMBA_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(hymba_generate(NULL, "x", &sp, NULL, NULL), HYMBA_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(hymba_context_reset(NULL), HYMBA_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(hymba_context_new(model, NULL, &ctx), HYMBA_OK);
    EXPECT_STATUS(hymba_eval(ctx, NULL, 0, logits), HYMBA_ERR_INVALID_ARGUMENT);   /* logits of nothing */
    EXPECT_STATUS(hymba_eval(ctx, NULL, 3, logits), HYMBA_ERR_INVALID_ARGUMENT);   /* n ids from NULL */
    EXPECT_STATUS(hymba_eval(ctx, &id, -1, logits), HYMBA_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(hymba_generate(ctx, NULL, &sp, NULL, NULL), HYMBA_ERR_INVALID_ARGUMENT);
    hymba_sampling_params bad_sp = sp;
    bad_sp.top_p = 0;                                                              /* out of range */
    EXPECT_STATUS(hymba_generate(ctx, "x", &bad_sp, NULL, NULL), HYMBA_ERR_INVALID_ARGUMENT);
    int32_t bad = vocab;
    EXPECT_STATUS(hymba_eval(ctx, &bad, 1, logits), HYMBA_ERR_INVALID_ARGUMENT);
    if (hymba_context_n_tokens(ctx) != 0) FAIL("a refused eval fed tokens");
    EXPECT_STATUS(hymba_context_new(model, NULL, &freed), HYMBA_OK);
    hymba_context_free(freed);
    EXPECT_STATUS(hymba_eval(freed, &id, 1, logits), HYMBA_ERR_INVALID_ARGUMENT);  /* use after free */
    EXPECT_STATUS(hymba_context_reset(freed), HYMBA_ERR_INVALID_ARGUMENT);
    if (hymba_context_n_tokens(freed) != -1) FAIL("n_tokens of a freed context");
    hymba_context_free(freed);                                                     /* double free: ignored */
    hymba_model_free(model);                                                       /* before its context: allowed */
    if (hymba_model_vocab_size(model) != -1) FAIL("vocab_size of a freed model");
    EXPECT_STATUS(hymba_context_new(model, NULL, &freed), HYMBA_ERR_INVALID_ARGUMENT);
    hymba_model_free(model);                                                       /* double free: ignored */
    EXPECT_STATUS(hymba_context_reset(ctx), HYMBA_OK);
    run_prompt(ctx, HYMBA_KV_F16, 0, logits); /* the context kept the model; AUTO is F16 without a budget */
    hymba_context_free(ctx);
    free(logits);
    return atomic_load(&failures) == 0;
}

struct worker {
    hymba_model *model;
    unsigned seed;
};

static unsigned next(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7FFF;
}

static void *work(void *arg) {
    struct worker *w = arg;
    hymba_context *slots[SLOTS] = {0};
    int kv_of[SLOTS] = {0};
    float *logits = malloc(sizeof(float) * (size_t)vocab);
    int32_t ctx_len = hymba_model_context_length(w->model);
    while (now() < deadline) {
        unsigned r = next(&w->seed);
        int i = (int)(r % SLOTS);
        switch ((r / SLOTS) % 8) {
        case 0: /* a new context in the slot (freeing the old one) */
            hymba_context_free(slots[i]);
            slots[i] = NULL;
            {
                hymba_context_params cp = hymba_context_default_params();
                cp.n_ctx = 32 + (int32_t)(next(&w->seed) % 96);
                if (cp.n_ctx > ctx_len) cp.n_ctx = ctx_len;
                cp.kv_type = (int32_t)(next(&w->seed) % KV_TYPES); /* F16, F32, Q8 */
                kv_of[i] = cp.kv_type;
                if (hymba_context_new(w->model, &cp, &slots[i]) != HYMBA_OK) FAIL("context_new");
                atomic_fetch_add(&contexts_made, 1);
            }
            break;
        case 1: /* free */
            hymba_context_free(slots[i]);
            slots[i] = NULL;
            break;
        case 2: case 3: case 4: /* a prompt from empty: exact reference results */
            if (slots[i] == NULL) break;
            if (hymba_context_reset(slots[i]) != HYMBA_OK) FAIL("reset");
            atomic_fetch_add(&resets, 1);
            run_prompt(slots[i], kv_of[i], (int)(next(&w->seed) % PROMPTS), logits);
            break;
        case 5: /* continue whatever the context holds, until it is full */
            if (slots[i] == NULL) break;
            {
                hymba_sampling_params sp = greedy();
                struct collected c = {.n = 0};
                hymba_status st = hymba_generate(slots[i], hymba_context_n_tokens(slots[i]) == 0 ? "a" : " b", &sp, collect, &c);
                atomic_fetch_add(&generations, 1);
                atomic_fetch_add(&tokens_out, c.n);
                if (st == HYMBA_ERR_CONTEXT_FULL) {
                    if (hymba_context_reset(slots[i]) != HYMBA_OK) FAIL("reset after full");
                } else if (st != HYMBA_OK) FAIL("generate: %s", hymba_status_string(st));
            }
            break;
        case 6: case 7: /* the shared context: runs, or is refused as busy */
            {
                int32_t id = 1 + (int32_t)(next(&w->seed) % 50);
                hymba_status st = (next(&w->seed) & 3) == 0 ? hymba_context_reset(shared) : hymba_eval(shared, &id, 1, logits);
                if (st == HYMBA_ERR_CONTEXT_FULL) st = hymba_context_reset(shared);
                if (st == HYMBA_OK) atomic_fetch_add(&shared_runs, 1);
                else if (st == HYMBA_ERR_INVALID_ARGUMENT && strstr(hymba_last_error(), "busy") != NULL) atomic_fetch_add(&shared_refused, 1);
                else if (st != HYMBA_ERR_INVALID_ARGUMENT) FAIL("shared context: %s", hymba_status_string(st));
                else FAIL("shared context refused for another reason");
            }
            break;
        }
    }
    for (int i = 0; i < SLOTS; i++) hymba_context_free(slots[i]);
    free(logits);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: stress MODEL SECONDS THREADS\n"); return 2; }
    const char *path = argv[1];
    double seconds = atof(argv[2]);
    int threads = atoi(argv[3]);
    if (threads < 1 || threads > 64) { fprintf(stderr, "THREADS must be in 1...64\n"); return 2; }
    if (!prepare(path)) return 1;

    hymba_model_params mp = hymba_model_default_params();
    mp.threads = 2; /* each context runs its kernels on itself and one pool worker */
    hymba_model *model = NULL;
    if (hymba_model_open(path, &mp, &model) != HYMBA_OK) { fprintf(stderr, "%s\n", hymba_last_error()); return 1; }
    hymba_context_params cp = hymba_context_default_params();
    cp.n_ctx = 64;
    if (hymba_context_new(model, &cp, &shared) != HYMBA_OK) { fprintf(stderr, "%s\n", hymba_last_error()); return 1; }

    deadline = now() + seconds;
    pthread_t tids[64];
    struct worker workers[64];
    for (int t = 0; t < threads; t++) {
        workers[t] = (struct worker){.model = model, .seed = 0x5EED + (unsigned)t};
        pthread_create(&tids[t], NULL, work, &workers[t]);
    }
    for (int t = 0; t < threads; t++) pthread_join(tids[t], NULL);
    hymba_context_free(shared);
    hymba_model_free(model);
    for (int kv = 0; kv < KV_TYPES; kv++)
        for (int p = 0; p < PROMPTS; p++) free(refs[kv][p].logits);

    printf("%d threads, %.0f s: %ld contexts made, %ld prompt evals, %ld generations (%ld tokens), %ld resets; "
           "shared context: %ld calls ran, %ld refused as busy; %ld contract checks; %d failures\n",
           threads, seconds, atomic_load(&contexts_made), atomic_load(&evals), atomic_load(&generations),
           atomic_load(&tokens_out), atomic_load(&resets), atomic_load(&shared_runs), atomic_load(&shared_refused),
           atomic_load(&contract_checks), atomic_load(&failures));
    return atomic_load(&failures) == 0 ? 0 : 1;
}
