/* mmc runtime C API: load a plan, open a session on a backend, prefill and decode.
 * Every call returns an mm_status: NULL on success, else an object carrying a code and a message
 * naming the file, key or tensor at fault (free it with mm_status_free). */
#ifndef MM_RUNTIME_H
#define MM_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mm_status_code {
  MM_STATUS_OK = 0,
  MM_STATUS_INVALID_ARGUMENT = 1, /* bad request: ids out of vocabulary, too long, bad slot */
  MM_STATUS_INVALID_PLAN = 2,     /* plan file truncated, corrupted, newer schema, no cubin */
  MM_STATUS_INVALID_WEIGHTS = 3,  /* weights directory does not match the plan */
  MM_STATUS_UNAVAILABLE = 4,      /* backend not built or no device */
  MM_STATUS_INTERNAL = 5          /* out of memory, device error, bug */
} mm_status_code;

typedef struct mm_status_object* mm_status;
typedef struct mm_plan mm_plan;
typedef struct mm_session mm_session;

mm_status_code mm_status_get_code(mm_status status); /* MM_STATUS_OK for NULL */
const char* mm_status_get_message(mm_status status); /* "" for NULL */
void mm_status_free(mm_status status);

mm_status mm_plan_load(const char* path, mm_plan** out_plan);
int64_t mm_plan_vocab_size(const mm_plan* plan);
void mm_plan_free(mm_plan* plan);

typedef struct mm_session_options {
  const char* weights;  /* model directory, or "random" */
  const char* device;   /* "host", "cuda", or NULL: cuda if usable, else host */
  int64_t max_seq_len;  /* 0: the plan's limit */
  int32_t max_seqs;     /* concurrent sequences; 0: 1 */
  uint64_t seed;        /* for "random" weights */
} mm_session_options;

typedef struct mm_sampling {
  float temperature; /* <= 0: greedy */
  int32_t top_k;     /* <= 0: all */
  float top_p;       /* >= 1: all */
  uint64_t seed;
} mm_sampling;

/* The plan must outlive the session. */
mm_status mm_session_init(const mm_plan* plan, const mm_session_options* options,
                          mm_session** out_session);
/* Appends `n` prompt tokens to sequence `slot`. logits: NULL or [vocab] floats (last token);
 * next: the token sampled from them with sampling step `step`. */
mm_status mm_session_prefill(mm_session* session, int32_t slot, const int32_t* ids, int64_t n,
                             const mm_sampling* sampling, int64_t step, float* logits,
                             int32_t* next);
/* One token for each of `n` sequences. logits: NULL or [n, vocab]; next: [n]. */
mm_status mm_session_decode(mm_session* session, int32_t n, const int32_t* slots,
                            const int32_t* ids, const mm_sampling* sampling, int64_t step,
                            float* logits, int32_t* next);
/* Frees a sequence's KV cache blocks. */
mm_status mm_session_release(mm_session* session, int32_t slot);
void mm_session_free(mm_session* session);

#ifdef __cplusplus
}
#endif

#endif
