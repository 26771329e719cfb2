/*
 * threads.c - one model shared by two contexts used from two threads at once gives exactly
 * the single-threaded results: the prompt's logits and the logits after generation bitwise
 * equal, the generated tokens identical.
 *
 *     threads MODEL ROUNDS
 *
 * The reference runs both prompts one after the other on one model. Then a second model is
 * opened and two threads, released together by a barrier, each make their own context on it
 * (so both may ask for the lazily computed meta-token prefix at once) and run their prompt
 * ROUNDS times. Prints "prompt I: TOKENS" for the reference and exits 0 when every round of
 * every thread matched it; 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L /* pthread_barrier_t */
#include <hymba.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GENERATED 16

static const char *prompts[2] = {"def fibonacci(n):\n", "import os\nimport sys\n\n\nclass "};

struct result {
    float *prompt_logits; /* after the prompt */
    float *final_logits;  /* after the last generated token is fed */
    int32_t tokens[GENERATED + 1];
    int n_tokens;
    hymba_status status;
    char error[512];
};

static int32_t collect(const char *piece, int32_t token, void *user_data) {
    (void)piece;
    struct result *r = user_data;
    if (token >= 0 && r->n_tokens < GENERATED + 1) r->tokens[r->n_tokens++] = token;
    return 0;
}

/* Tokenize, eval the prompt (logits), generate greedily, feed the last token (logits). */
static void run(hymba_model *model, int which, struct result *r) {
    int32_t vocab = hymba_model_vocab_size(model);
    r->prompt_logits = malloc(sizeof(float) * (size_t)vocab);
    r->final_logits = malloc(sizeof(float) * (size_t)vocab);
    r->n_tokens = 0;
    hymba_context *ctx = NULL;
    int32_t ids[64], n = 0;
    hymba_sampling_params sp = hymba_sampling_default_params();
    sp.temperature = 0;
    sp.max_tokens = GENERATED;
    r->status = hymba_context_new(model, NULL, &ctx);
    if (r->status == HYMBA_OK) r->status = hymba_tokenize(model, prompts[which], 1, ids, 64, &n);
    if (r->status == HYMBA_OK) r->status = hymba_eval(ctx, ids, n, r->prompt_logits);
    if (r->status == HYMBA_OK) r->status = hymba_generate(ctx, "", &sp, collect, r);
    if (r->status == HYMBA_OK) r->status = hymba_eval(ctx, NULL, 0, r->final_logits);
    if (r->status != HYMBA_OK) snprintf(r->error, sizeof r->error, "%s", hymba_last_error());
    hymba_context_free(ctx);
}

static void release(struct result *r) {
    free(r->prompt_logits);
    free(r->final_logits);
}

struct worker {
    hymba_model *model;
    int which, rounds;
    pthread_barrier_t *start;
    struct result *results; /* rounds of them */
};

static void *work(void *arg) {
    struct worker *w = arg;
    pthread_barrier_wait(w->start);
    for (int i = 0; i < w->rounds; i++) run(w->model, w->which, &w->results[i]);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL ROUNDS\n", argv[0]);
        return 2;
    }
    int rounds = atoi(argv[2]);
    hymba_model *single = NULL, *shared = NULL;
    if (hymba_model_open(argv[1], NULL, &single) != HYMBA_OK || hymba_model_open(argv[1], NULL, &shared) != HYMBA_OK) {
        fprintf(stderr, "open: %s\n", hymba_last_error());
        return 1;
    }
    size_t logit_bytes = sizeof(float) * (size_t)hymba_model_vocab_size(single);

    struct result reference[2];
    for (int p = 0; p < 2; p++) {
        run(single, p, &reference[p]);
        if (reference[p].status != HYMBA_OK || reference[p].n_tokens != GENERATED) {
            fprintf(stderr, "reference %d: status %d, %d tokens: %s\n", p, reference[p].status, reference[p].n_tokens,
                    reference[p].error);
            return 1;
        }
        printf("prompt %d:", p);
        for (int i = 0; i < GENERATED; i++) printf(" %d", reference[p].tokens[i]);
        printf("\n");
    }

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    struct worker workers[2];
    pthread_t threads[2];
    for (int p = 0; p < 2; p++) {
        workers[p] = (struct worker){shared, p, rounds, &start, calloc((size_t)rounds, sizeof(struct result))};
        pthread_create(&threads[p], NULL, work, &workers[p]);
    }
    for (int p = 0; p < 2; p++) pthread_join(threads[p], NULL);
    pthread_barrier_destroy(&start);

    int mismatches = 0;
    for (int p = 0; p < 2; p++) {
        for (int i = 0; i < rounds; i++) {
            struct result *r = &workers[p].results[i], *want = &reference[p];
            if (r->status != HYMBA_OK) {
                fprintf(stderr, "thread %d round %d: status %d: %s\n", p, i, r->status, r->error);
                mismatches++;
            } else if (r->n_tokens != want->n_tokens || memcmp(r->tokens, want->tokens, sizeof(int32_t) * GENERATED) != 0) {
                fprintf(stderr, "thread %d round %d: generated tokens differ\n", p, i);
                mismatches++;
            } else if (memcmp(r->prompt_logits, want->prompt_logits, logit_bytes) != 0 ||
                       memcmp(r->final_logits, want->final_logits, logit_bytes) != 0) {
                fprintf(stderr, "thread %d round %d: logits differ\n", p, i);
                mismatches++;
            }
            release(r);
        }
        free(workers[p].results);
        release(&reference[p]);
    }
    hymba_model_free(single);
    hymba_model_free(shared);
    if (mismatches > 0) return 1;
    printf("2 threads x %d rounds: logits bitwise equal, tokens identical\n", rounds);
    return 0;
}
