/*
 * layout.c - sizes and field offsets of the header's structs as this C compiler lays them
 * out, one "NAME VALUE" per line; the test compares them with Swift's and Python's view.
 */
#include <hymba.h>

#include <stddef.h>
#include <stdio.h>

#define SIZE(T) printf("%s %zu\n", #T, sizeof(T))
#define FIELD(T, f) printf("%s.%s %zu\n", #T, #f, offsetof(T, f))

int main(void) {
    SIZE(hymba_status);
    SIZE(hymba_model_params);
    FIELD(hymba_model_params, memory_budget_bytes);
    FIELD(hymba_model_params, threads);
    FIELD(hymba_model_params, verify_checksums);
    SIZE(hymba_context_params);
    FIELD(hymba_context_params, n_ctx);
    FIELD(hymba_context_params, kv_type);
    SIZE(hymba_sampling_params);
    FIELD(hymba_sampling_params, temperature);
    FIELD(hymba_sampling_params, top_k);
    FIELD(hymba_sampling_params, top_p);
    FIELD(hymba_sampling_params, min_p);
    FIELD(hymba_sampling_params, repeat_penalty);
    FIELD(hymba_sampling_params, repeat_last_n);
    FIELD(hymba_sampling_params, seed);
    FIELD(hymba_sampling_params, max_tokens);
    return 0;
}
