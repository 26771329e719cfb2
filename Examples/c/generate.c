/*
 * generate.c - a complete libhymba program: open a model, generate text from a prompt with
 * the text streamed to stdout as it is produced, clean up.
 *
 *     ./generate [-m MODEL] [-n MAX_TOKENS] [--temp TEMPERATURE] [-s SEED] [-c N_CTX] [-t THREADS] PROMPT
 *
 * The flags are llama.cpp's (-t is threads, --temp the temperature). Defaults: the
 * repository's models/tiny-code-hymba-q8.hymba, 64 tokens, temperature 0 (greedy), seed 0,
 * the model's context length, one thread per core. The prompt is not echoed; a summary goes
 * to stderr. Exit status: 0 on success, 1 on an error (its message on stderr), 64 on bad
 * usage (EX_USAGE, as hymba-edge).
 */
#include <hymba.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct progress {
    int tokens; /* generated tokens seen by the callback */
};

/* Called for each piece of text: valid UTF-8, possibly empty. Returning 0 continues. */
static int32_t print_piece(const char *piece, int32_t token, void *user_data) {
    struct progress *p = user_data;
    if (token >= 0) p->tokens++;
    fputs(piece, stdout);
    fflush(stdout);
    return 0;
}

static int usage(const char *argv0) {
    fprintf(stderr, "usage: %s [-m MODEL] [-n MAX_TOKENS] [--temp TEMPERATURE] [-s SEED] [-c N_CTX] [-t THREADS] PROMPT\n", argv0);
    return 64;
}

int main(int argc, char **argv) {
    const char *model_path = "models/tiny-code-hymba-q8.hymba";
    const char *prompt = NULL;
    hymba_sampling_params sampling = hymba_sampling_default_params();
    hymba_context_params cparams = hymba_context_default_params();
    hymba_model_params mparams = hymba_model_default_params();
    sampling.temperature = 0.0f;
    sampling.max_tokens = 64;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* "--temp" is handled as the one-letter flag 'T'. */
        char flag = strcmp(a, "--temp") == 0 ? 'T' : (a[0] == '-' && a[1] != '\0' && a[2] == '\0' ? a[1] : '\0');
        if (flag != '\0' && strchr("mnTsct", flag) != NULL) {
            if (i + 1 >= argc) return usage(argv[0]);
            const char *v = argv[++i];
            char *end = NULL;
            switch (flag) {
            case 'm': model_path = v; continue;
            case 'n': sampling.max_tokens = (int32_t)strtol(v, &end, 10); break;
            case 'T': sampling.temperature = strtof(v, &end); break;
            case 's': sampling.seed = strtoull(v, &end, 10); break;
            case 'c': cparams.n_ctx = (int32_t)strtol(v, &end, 10); break;
            case 't': mparams.threads = (int32_t)strtol(v, &end, 10); break;
            }
            if (end == v || *end != '\0') return usage(argv[0]);
        } else if (prompt == NULL) {
            prompt = a;
        } else {
            return usage(argv[0]);
        }
    }
    if (prompt == NULL) return usage(argv[0]);

    hymba_model *model = NULL;
    hymba_status st = hymba_model_open(model_path, &mparams, &model);
    if (st != HYMBA_OK) {
        fprintf(stderr, "error: %s\n", hymba_last_error());
        return 1;
    }

    hymba_context *ctx = NULL;
    st = hymba_context_new(model, &cparams, &ctx);
    if (st != HYMBA_OK) {
        fprintf(stderr, "error: %s\n", hymba_last_error());
        hymba_model_free(model);
        return 1;
    }

    struct progress progress = {0};
    st = hymba_generate(ctx, prompt, &sampling, print_piece, &progress);
    printf("\n");
    fflush(stdout);
    int failed = st != HYMBA_OK && st != HYMBA_ERR_CONTEXT_FULL;
    if (st == HYMBA_OK || st == HYMBA_ERR_CONTEXT_FULL) {
        fprintf(stderr, "[%d tokens generated, %d held by the context: %s]\n", progress.tokens,
                hymba_context_n_tokens(ctx), st == HYMBA_OK ? "done" : "context full");
    } else {
        fprintf(stderr, "error: %s\n", hymba_last_error());
    }

    hymba_context_free(ctx);
    hymba_model_free(model);
    return failed ? 1 : 0;
}
