/*
 * pieces.c - prints every callback of one hymba_generate as "TOKEN HEX" (the piece's bytes
 * in hex, "-" when empty), so the test can check each piece is valid UTF-8 on its own.
 *
 *     pieces MODEL PROMPT MAX_TOKENS TEMPERATURE SEED
 *
 * Sampling: the given temperature, with top-k, top-p and min-p off. Exit 0 when generation
 * ended with HYMBA_OK.
 */
#include <hymba.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int32_t print_piece(const char *piece, int32_t token, void *user_data) {
    (void)user_data;
    printf("%d ", token);
    if (*piece == '\0') printf("-");
    for (const unsigned char *p = (const unsigned char *)piece; *p; p++) printf("%02x", *p);
    printf("\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODEL PROMPT MAX_TOKENS TEMPERATURE SEED\n", argv[0]);
        return 2;
    }
    hymba_model *model = NULL;
    hymba_context *ctx = NULL;
    hymba_status st = hymba_model_open(argv[1], NULL, &model);
    if (st == HYMBA_OK) st = hymba_context_new(model, NULL, &ctx);
    if (st == HYMBA_OK) {
        hymba_sampling_params sp = hymba_sampling_default_params();
        sp.max_tokens = atoi(argv[3]);
        sp.temperature = strtof(argv[4], NULL);
        sp.seed = strtoull(argv[5], NULL, 10);
        sp.top_k = 0;
        sp.top_p = 1;
        sp.min_p = 0;
        st = hymba_generate(ctx, argv[2], &sp, print_piece, NULL);
    }
    if (st != HYMBA_OK) fprintf(stderr, "error: %s\n", hymba_last_error());
    hymba_context_free(ctx);
    hymba_model_free(model);
    return st == HYMBA_OK ? 0 : 1;
}
