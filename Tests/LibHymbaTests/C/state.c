/*
 * state.c - hymba_state_* from C: a state taken with hymba_state_get or saved with
 * hymba_state_save and restored into another context continues with bitwise the same
 * logits; the size convention of hymba_state_get; hostile bytes and files refused with the
 * documented status and the context unchanged.
 *
 *     state MODEL TMPDIR
 *
 * Prints each failed check and exits 1 if any failed; "N checks passed" and 0 otherwise.
 */
#include <hymba.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"

static hymba_context *new_context(hymba_model *model, int32_t n_ctx, int32_t kv) {
    hymba_context_params cp = hymba_context_default_params();
    cp.n_ctx = n_ctx;
    cp.kv_type = kv;
    hymba_context *ctx = NULL;
    if (hymba_context_new(model, &cp, &ctx) != HYMBA_OK) {
        fprintf(stderr, "hymba_context_new: %s\n", hymba_last_error());
        exit(2);
    }
    return ctx;
}

/* Feeds `n` ids and compares the logits of the two contexts bitwise. */
static int same_continuation(hymba_context *a, hymba_context *b, const int32_t *ids, int n, int vocab) {
    float *la = malloc(sizeof(float) * vocab), *lb = malloc(sizeof(float) * vocab);
    int same = 1;
    for (int i = 0; i < n && same; i++) {
        if (hymba_eval(a, ids + i, 1, la) != HYMBA_OK || hymba_eval(b, ids + i, 1, lb) != HYMBA_OK) same = 0;
        else if (memcmp(la, lb, sizeof(float) * vocab) != 0) same = 0;
    }
    free(la);
    free(lb);
    return same;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: state MODEL TMPDIR\n");
        return 2;
    }
    hymba_model *model = NULL;
    if (hymba_model_open(argv[1], NULL, &model) != HYMBA_OK) {
        fprintf(stderr, "%s\n", hymba_last_error());
        return 2;
    }
    const int vocab = hymba_model_vocab_size(model);
    char path[4096];
    snprintf(path, sizeof path, "%s/c.state", argv[2]);

    for (int32_t kv = HYMBA_KV_F16; kv <= HYMBA_KV_Q8; kv++) {
        hymba_context *a = new_context(model, 256, kv);
        int32_t ids[200];
        int32_t n = 0;
        CHECK(hymba_tokenize(model, "def fibonacci(n):\n    if n < 2:\n        return n\n", 1, ids, 200, &n) == HYMBA_OK);
        CHECK(hymba_eval(a, ids, n, NULL) == HYMBA_OK);

        /* The size convention of hymba_tokenize. */
        int64_t size = hymba_state_size(a);
        size_t need = 0;
        CHECK(size > 0);
        CHECK(hymba_state_get(a, NULL, 0, &need) == HYMBA_ERR_INVALID_ARGUMENT && (int64_t)need == size);
        CHECK(strstr(hymba_last_error(), "hymba_state_get") != NULL);
        unsigned char *buf = malloc(need);
        size_t got = 0;
        CHECK(hymba_state_get(a, buf, need - 1, &got) == HYMBA_ERR_INVALID_ARGUMENT && got == need);
        CHECK(hymba_state_get(a, buf, need, &got) == HYMBA_OK && got == need);
        CHECK(hymba_state_get(a, buf, need, NULL) == HYMBA_ERR_INVALID_ARGUMENT);

        /* Restored from bytes and from a file: the same continuation, bit for bit. */
        hymba_context *b = new_context(model, 256, kv);
        CHECK(hymba_state_set(b, buf, need) == HYMBA_OK);
        CHECK(hymba_context_n_tokens(b) == hymba_context_n_tokens(a));
        CHECK(hymba_state_save(a, path) == HYMBA_OK);
        hymba_context *c = new_context(model, 256, kv);
        CHECK(hymba_state_load(c, path) == HYMBA_OK);
        hymba_context *uninterrupted = new_context(model, 256, kv);
        CHECK(hymba_eval(uninterrupted, ids, n, NULL) == HYMBA_OK);
        int32_t next[6] = {1, 415, 2143, 29889, 13, 1678};
        CHECK(same_continuation(a, b, next, 6, vocab));
        CHECK(same_continuation(uninterrupted, c, next, 6, vocab));
        hymba_context *fresh = new_context(model, 256, kv), *loaded = new_context(model, 256, kv);
        CHECK(hymba_state_load(loaded, path) == HYMBA_OK);
        CHECK(!same_continuation(loaded, fresh, next, 1, vocab)); /* the state matters */

        /* Hostile bytes: the documented status, the context unchanged. */
        hymba_context *victim = new_context(model, 256, kv);
        CHECK(hymba_eval(victim, ids, 3, NULL) == HYMBA_OK);
        unsigned char *bad = malloc(need);
        memcpy(bad, buf, need);
        bad[need - 5] ^= 1; /* inside the last section's payload */
        CHECK(hymba_state_set(victim, bad, need) == HYMBA_ERR_CHECKSUM);
        CHECK(strstr(hymba_last_error(), "checksum") != NULL);
        CHECK(hymba_state_set(victim, buf, need / 2) == HYMBA_ERR_FORMAT);
        CHECK(strstr(hymba_last_error(), "truncated") != NULL);
        CHECK(hymba_state_set(victim, buf, 10) == HYMBA_ERR_FORMAT);
        CHECK(hymba_state_set(victim, NULL, 10) == HYMBA_ERR_INVALID_ARGUMENT);
        CHECK(hymba_context_n_tokens(victim) == 3);
        hymba_context *other_ctx = new_context(model, 128, kv);
        CHECK(hymba_state_set(other_ctx, buf, need) == HYMBA_ERR_INVALID_ARGUMENT);
        CHECK(strstr(hymba_last_error(), "context length") != NULL && hymba_context_n_tokens(other_ctx) == 0);
        hymba_context *other_kv = new_context(model, 256, kv == HYMBA_KV_F16 ? HYMBA_KV_Q8 : HYMBA_KV_F16);
        CHECK(hymba_state_set(other_kv, buf, need) == HYMBA_ERR_INVALID_ARGUMENT);
        CHECK(strstr(hymba_last_error(), "KV") != NULL && hymba_context_n_tokens(other_kv) == 0);

        /* Files: missing, unwritable; the old file survives a failed save. */
        CHECK(hymba_state_load(victim, "/nonexistent/dir/x.state") == HYMBA_ERR_IO);
        CHECK(hymba_state_save(victim, "/nonexistent/dir/x.state") == HYMBA_ERR_IO);
        CHECK(hymba_state_load(victim, NULL) == HYMBA_ERR_INVALID_ARGUMENT);
        CHECK(hymba_state_size(NULL) == -1);
        CHECK(hymba_context_n_tokens(victim) == 3);

        free(bad);
        free(buf);
        hymba_context_free(a);
        hymba_context_free(b);
        hymba_context_free(c);
        hymba_context_free(fresh);
        hymba_context_free(loaded);
        hymba_context_free(uninterrupted);
        hymba_context_free(victim);
        hymba_context_free(other_ctx);
        hymba_context_free(other_kv);
    }
    hymba_model_free(model);
    if (failures) {
        fprintf(stderr, "%d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("%d checks passed\n", checks);
    return 0;
}
