/*
 * hymba.h - the C API of libhymba, the hymba-edge runtime for NVIDIA Hymba models.
 *
 * Open a .hymba model file, make contexts over it, tokenize, feed tokens and read logits,
 * or generate text streamed through a callback:
 *
 *     hymba_model *model = NULL;
 *     hymba_model_params mp = hymba_model_default_params();
 *     if (hymba_model_open("models/tiny-code-hymba-q8.hymba", &mp, &model) != HYMBA_OK) {
 *         fprintf(stderr, "%s\n", hymba_last_error());
 *         return 1;
 *     }
 *     hymba_context *ctx = NULL;
 *     hymba_context_params cp = hymba_context_default_params();
 *     hymba_context_new(model, &cp, &ctx);
 *     hymba_sampling_params sp = hymba_sampling_default_params();
 *     hymba_generate(ctx, "def fibonacci(n):", &sp, print_piece, NULL);
 *     hymba_context_free(ctx);
 *     hymba_model_free(model);
 *
 * Build and link: see the README ("Embedding: libhymba"); `pkg-config --cflags --libs hymba`
 * once installed.
 *
 * Conventions
 * - Every function that can fail returns a hymba_status; HYMBA_OK is 0. On failure,
 *   hymba_last_error() gives a message naming what was wrong, and out-parameters are left
 *   unchanged unless the function says otherwise.
 * - Every pointer is checked: NULL where a value is needed gives HYMBA_ERR_INVALID_ARGUMENT,
 *   never a crash. Handles are checked against the live ones, so a call on a freed handle
 *   (including a second free) is refused with HYMBA_ERR_INVALID_ARGUMENT as long as the
 *   address has not been reused by a newer handle. Do not rely on this: it catches mistakes,
 *   it does not make them safe.
 * - Text is UTF-8, NUL-terminated. Invalid UTF-8 in input text is read as U+FFFD.
 * - Parameter structs: always start from the *_default_params() function and then set the
 *   fields you need; later versions may append fields (with a new minor version).
 *
 * Threads
 * - A model may be shared by any number of contexts, used from different threads at once.
 *   hymba_model_* queries, hymba_tokenize and hymba_detokenize may be called from any
 *   thread at any time.
 * - A context is used by one thread at a time. A call on a context that another call is
 *   still using (another thread, or the generate callback calling back into its own
 *   context) is refused with HYMBA_ERR_INVALID_ARGUMENT; nothing is changed.
 * - hymba_last_error() is per thread.
 * - Free a context or model only when no call on it is running.
 *
 * Lifetimes: a context keeps its model alive, so hymba_model_free may come before the
 * hymba_context_free of its contexts; the model is released with its last context.
 */
#ifndef HYMBA_H
#define HYMBA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; hymba_version() gives the library's ("MAJOR.MINOR.PATCH").
 * Within a major version, programs built against an older minor version keep working. */
#define HYMBA_VERSION_MAJOR 0
#define HYMBA_VERSION_MINOR 1
#define HYMBA_VERSION_PATCH 0

/* The library's version, e.g. "0.1.0" (a static string). */
const char *hymba_version(void);

/* The kernel backend this process runs on: "portable", "avx2" or "avx512" (a static string;
 * chosen once, at the first call into the library, from the CPU's instruction sets or the
 * HYMBA_BACKEND environment variable). "none" when HYMBA_BACKEND names a backend this build
 * or CPU lacks: running a model then fails with HYMBA_ERR_INVALID_ARGUMENT and
 * hymba_last_error() names what the CPU lacks. Thread-safe. */
const char *hymba_backend_name(void);

/* ---- Statuses and errors ------------------------------------------------------------ */

typedef enum hymba_status {
    HYMBA_OK = 0,
    /* A NULL or freed pointer, a value out of range, a buffer too small, a token id outside
     * the vocabulary, a call at the wrong time (e.g. a context in use by another call). */
    HYMBA_ERR_INVALID_ARGUMENT = 1,
    /* The operating system refused: the file cannot be opened, mapped or read. */
    HYMBA_ERR_IO = 2,
    /* The file is not a valid .hymba model (structure, metadata, tensors, tokenizer). */
    HYMBA_ERR_FORMAT = 3,
    /* A checksum does not match: the file is corrupt. */
    HYMBA_ERR_CHECKSUM = 4,
    /* A valid file this runtime cannot run (format version, model settings, no tokenizer). */
    HYMBA_ERR_UNSUPPORTED = 5,
    /* The model or context does not fit in hymba_model_params.memory_budget_bytes. */
    HYMBA_ERR_MEMORY_BUDGET = 6,
    /* The context cannot hold the tokens (nothing was fed), or generation filled it. */
    HYMBA_ERR_CONTEXT_FULL = 7,
    /* The generate callback returned non-zero: generation stopped as asked. */
    HYMBA_ERR_CANCELLED = 8,
    /* A failure inside the library that none of the above describes. */
    HYMBA_ERR_INTERNAL = 9
} hymba_status;

/* The message of the last call that failed on this thread ("" if none has). Valid until
 * the next failing call on this thread; successful calls leave it unchanged. */
const char *hymba_last_error(void);

/* A short static name for a status, e.g. "context full"; "unknown status" for other values. */
const char *hymba_status_string(hymba_status status);

/* ---- Models ------------------------------------------------------------------------- */

typedef struct hymba_model hymba_model;     /* opaque */
typedef struct hymba_context hymba_context; /* opaque */

typedef struct hymba_model_params {
    /* Most bytes the process may hold for this model and its contexts (peak resident set as
     * the runtime's memory planner counts it: an allowance for the process measured on
     * hymba-edge, the tokenizer, the weights, and each context's caches, states, activations
     * and logits; not your program's own memory); 0 = no budget (default).
     * hymba_model_open plans before loading any weight, for one context of the model's full
     * context length: if that does not fit it shrinks the prefill chunk, then stores the KV
     * cache in q8, then streams the weights from the file layer by layer (same output,
     * slower); if nothing fits it fails with HYMBA_ERR_MEMORY_BUDGET and hymba_last_error()
     * gives the plan's breakdown and the smallest budget that would fit.
     * hymba_context_new then admits each context only if it fits together with the model
     * and the contexts still alive (else HYMBA_ERR_MEMORY_BUDGET, with the plan); a freed
     * context's memory is counted no more. */
    uint64_t memory_budget_bytes;
    /* Threads each context's forward pass runs on (the calling thread and threads - 1
     * workers the context starts); 0 = one per core (default), at most 256. */
    int32_t threads;
    /* Non-zero: check each chunk's checksum as its tensor loads (default 1). */
    int32_t verify_checksums;
} hymba_model_params;

hymba_model_params hymba_model_default_params(void);

/* Opens the .hymba file at `path` (memory-mapped; header, metadata, tensor shapes and,
 * unless verify_checksums is 0, chunk checksums are checked). `params` may be NULL for the
 * defaults. On success *out receives the model; free it with hymba_model_free. */
hymba_status hymba_model_open(const char *path, const hymba_model_params *params, hymba_model **out);

/* Releases the caller's reference (contexts keep the model alive). NULL is ignored; a
 * freed handle is refused (see Conventions). */
void hymba_model_free(hymba_model *model);

/* Logits per position = token ids 0 .. vocab_size-1. -1 for an invalid model. */
int32_t hymba_model_vocab_size(const hymba_model *model);

/* The longest context the model supports (max_position_embeddings). -1 for an invalid model. */
int32_t hymba_model_context_length(const hymba_model *model);

/* ---- Contexts ----------------------------------------------------------------------- */

typedef enum hymba_kv_type {
    HYMBA_KV_AUTO = -1, /* the model's choice: F16, or Q8 when its memory plan needs it (default) */
    HYMBA_KV_F16 = 0,   /* half the memory of F32; keys and values rounded to binary16 */
    HYMBA_KV_F32 = 1,   /* exact */
    HYMBA_KV_Q8 = 2     /* int8 with a scale per position and head: about a quarter of F32 */
} hymba_kv_type;

typedef struct hymba_context_params {
    /* Tokens the context can hold; 0 = the model's context length. */
    int32_t n_ctx;
    /* Element type of the key/value cache (a hymba_kv_type), default HYMBA_KV_AUTO. */
    int32_t kv_type;
} hymba_context_params;

hymba_context_params hymba_context_default_params(void);

/* A new, empty context over `model` (its caches are allocated now). `params` may be NULL
 * for the defaults. With a memory budget, HYMBA_ERR_MEMORY_BUDGET when the context does not
 * fit beside the model and its live contexts (see hymba_model_params). Free it with
 * hymba_context_free. */
hymba_status hymba_context_new(hymba_model *model, const hymba_context_params *params, hymba_context **out);

/* NULL is ignored; a freed handle is refused (see Conventions). */
void hymba_context_free(hymba_context *ctx);

/* Empties the context: the next hymba_generate starts a new text. */
hymba_status hymba_context_reset(hymba_context *ctx);

/* Tokens the context holds (including one generated token not yet fed: see hymba_generate),
 * and tokens it can hold. -1 for an invalid context. */
int32_t hymba_context_n_tokens(const hymba_context *ctx);
int32_t hymba_context_size(const hymba_context *ctx);

/* ---- Tokens ------------------------------------------------------------------------- */

/* The token ids of `text`, with the beginning-of-sequence token first when `add_bos` is
 * non-zero. Writes at most `capacity` ids to `ids` (which may be NULL when capacity is 0)
 * and the count to *n_out. When capacity is too small: HYMBA_ERR_INVALID_ARGUMENT, nothing
 * written to ids, and the needed count in *n_out. */
hymba_status hymba_tokenize(const hymba_model *model, const char *text, int32_t add_bos,
                            int32_t *ids, int32_t capacity, int32_t *n_out);

/* The text of `n` ids (special tokens such as BOS/EOS give no text), NUL-terminated in `buf`,
 * its length in bytes (without the NUL) in *len_out. An id outside 0 .. vocab_size-1 gives
 * HYMBA_ERR_INVALID_ARGUMENT. When `capacity` < length + 1: HYMBA_ERR_INVALID_ARGUMENT,
 * nothing written to buf (which may be NULL when capacity is 0), the length in *len_out. */
hymba_status hymba_detokenize(const hymba_model *model, const int32_t *ids, int32_t n,
                              char *buf, size_t capacity, size_t *len_out);

/* ---- Evaluation --------------------------------------------------------------------- */

/* Feeds `n` ids after what the context holds. When `logits` is not NULL, writes the
 * vocab_size logits of the last position into it (n = 0: the logits of the last position
 * already held; an error on an empty context). `ids` may be NULL when n is 0. A bad id
 * (HYMBA_ERR_INVALID_ARGUMENT) or too many ids (HYMBA_ERR_CONTEXT_FULL) changes nothing. */
hymba_status hymba_eval(hymba_context *ctx, const int32_t *ids, int32_t n, float *logits);

/* ---- Generation --------------------------------------------------------------------- */

typedef struct hymba_sampling_params {
    float temperature;      /* <= 0: greedy (argmax, no randomness); default 0.8 */
    int32_t top_k;          /* keep the k most likely tokens; <= 0 keeps all; default 40 */
    float top_p;            /* keep the most likely tokens up to this probability; 1 = off; default 0.95 */
    float min_p;            /* drop tokens below min_p x the top probability; 0 = off; default 0.05 */
    float repeat_penalty;   /* on tokens among the last repeat_last_n held; 1 = off; default 1 */
    int32_t repeat_last_n;  /* default 64 */
    uint64_t seed;          /* same seed, model, context and params: same tokens; default 0 */
    int32_t max_tokens;     /* most tokens to generate (EOS counts); < 0: until the context is full; default 256 */
} hymba_sampling_params;

hymba_sampling_params hymba_sampling_default_params(void);

/* Receives each piece of generated text: valid UTF-8, NUL-terminated, owned by the library
 * and valid only during the call. Called once per generated token (the piece may be "" while
 * its text is held back to complete a character), and possibly once more at the end with
 * token = -1 to release held-back text; the end-of-sequence token is not passed. Return 0
 * to go on, non-zero to stop. A piece containing a NUL byte (token <0x00>) ends there. */
typedef int32_t (*hymba_token_callback)(const char *piece, int32_t token, void *user_data);

/* Tokenizes `prompt` and feeds it after what the context holds (on an empty context: a new
 * text, BOS first; otherwise as a continuation of the text so far, without BOS), then
 * samples tokens and streams their text to `callback` (which may be NULL). An empty prompt
 * on a non-empty context continues from its last position. Returns:
 *   HYMBA_OK                  at the end-of-sequence token or after max_tokens tokens;
 *   HYMBA_ERR_CANCELLED       when the callback returned non-zero (the text of every token
 *                             passed so far has been delivered, the context stays usable);
 *   HYMBA_ERR_CONTEXT_FULL    when the prompt does not fit (nothing is fed) or when the
 *                             context filled up while generating (all text delivered);
 *   HYMBA_ERR_INVALID_ARGUMENT for sampling params out of range or an empty prompt on an
 *                             empty context (nothing is fed).
 * Afterwards the context holds the prompt and the generated tokens (not an end-of-sequence
 * token). The last generated token is not run through the model until the next
 * hymba_eval or hymba_generate on this context, which feeds it first. */
hymba_status hymba_generate(hymba_context *ctx, const char *prompt, const hymba_sampling_params *params,
                            hymba_token_callback callback, void *user_data);

#ifdef __cplusplus
}
#endif

#endif /* HYMBA_H */
