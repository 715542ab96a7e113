/* mmc runtime C API: load a plan, open a session on a backend, prefill and decode.
 * Every call returns an mm_status: NULL on success, else an object carrying a code and a message
 * naming the file, key or tensor at fault (free it with mm_status_free). */
#ifndef MM_RUNTIME_H
#define MM_RUNTIME_H

#include <stddef.h>
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
/* Same over `size` bytes in memory (copied); `origin` names them in messages. */
mm_status mm_plan_load_from_memory(const void* data, size_t size, const char* origin, mm_plan** out_plan);
int64_t mm_plan_vocab_size(const mm_plan* plan);
void mm_plan_free(mm_plan* plan);

/* What a plan says about its model and limits. Strings and arrays point into the plan and live as
 * long as it does. */
typedef struct mm_plan_info {
  const char* path;             /* the file the plan was loaded from */
  const char* architecture;     /* "MiniMaxM2ForCausalLM" */
  int64_t vocab_size;
  int64_t hidden_size;
  int64_t num_layers;
  int64_t max_seq_len;          /* longest sequence the plan's kernels accept */
  int64_t max_batch;            /* most sequences one decode call takes */
  int64_t max_prefill_tokens;   /* prompt tokens per prefill chunk */
  int32_t kv_block_size;        /* tokens per KV-cache block */
  const char* kv_cache_dtype;   /* "bf16" | "fp8" */
  int64_t bos_token_id;         /* -1: none */
  const int64_t* eos_token_ids;
  int32_t num_eos_token_ids;
  const char* tokenizer_file;   /* relative to the model directory; "" when the plan has none */
  const char* chat_template_file;
  uint64_t weight_bytes;        /* device bytes of every weight after its load-time transform */
  uint64_t model_hash;          /* of the checkpoint's config and tensor table */
} mm_plan_info;
mm_status mm_plan_get_info(const mm_plan* plan, mm_plan_info* out_info);

/* Whether a CUDA device can be opened (libcuda is loaded at run time; 0 on machines without). */
int mm_cuda_device_available(void);

/* Most host backend threads a session accepts (mm_session_options.threads). */
#define MM_MAX_THREADS 1024

typedef struct mm_session_options {
  const char* weights;  /* model directory, or "random" */
  const char* device;   /* "host", "cuda", or NULL: cuda if usable, else host */
  int64_t max_seq_len;  /* 0: the plan's limit */
  int32_t max_seqs;     /* concurrent sequences; 0: 1 */
  uint64_t seed;        /* for "random" weights */
  int32_t threads;      /* host backend threads, 0..MM_MAX_THREADS; 0: every core */
  int32_t progress;     /* non-zero: a weight-loading progress line on stderr */
  double gpu_memory_utilization; /* cuda, max_seq_len 0: share of the memory left after weights
                                    and arena the KV cache may take; 0: 0.9 */
  int32_t load_threads; /* checkpoint reader threads (reads in flight); 0: 4 with O_DIRECT, 1
                           through the page cache */
  const char* load_io;  /* checkpoint reads: "auto" (O_DIRECT where the filesystem allows it, else
                           the page cache), "direct", "buffered"; NULL: auto */
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
/* Keeps the first `length` tokens of a sequence (<= its length) and frees the blocks past them, so
 * that a new prompt sharing that prefix only prefills what differs. */
mm_status mm_session_truncate(mm_session* session, int32_t slot, int64_t length);
/* Tokens in the KV cache of sequence `slot`; -1 for a bad session or slot. */
int64_t mm_session_length(const mm_session* session, int32_t slot);

typedef struct mm_session_info {
  const char* backend;      /* "host (2 threads)", "cuda (NVIDIA H200, sm_90)" */
  const char* details;      /* device memory use, several lines; "" on the host */
  uint64_t weight_bytes;
  double load_seconds;      /* opening the backend and loading the weights */
  int64_t max_seq_len;      /* per sequence */
  int32_t max_seqs;
  int32_t kv_block_size;
  int64_t kv_blocks_total;
  int64_t kv_blocks_free;
} mm_session_info;
/* Strings live until the next call on the session. */
mm_status mm_session_get_info(const mm_session* session, mm_session_info* out_info);
void mm_session_free(mm_session* session);

/* ---- Measurements (mmrun bench): how the weights loaded, what a token costs, device rates ----
 * Nothing here is needed to run a model. */

typedef struct mm_load_stats {
  const char* source;       /* "checkpoint", "random" or "host" */
  uint64_t file_bytes;      /* bytes read from the shards */
  uint64_t weight_bytes;    /* bytes of weights written */
  double seconds;           /* the weights alone: directory check, reads, transforms, copies */
  int32_t reader_threads;
  int32_t files;            /* shards read */
  int32_t direct_files;     /* of which with O_DIRECT throughout */
  uint64_t staging_bytes;   /* host memory of the loader's staging buffers */
  int64_t peak_rss_kib;     /* the process's peak resident memory after the load */
} mm_load_stats;
/* Strings live as long as the session. */
mm_status mm_session_get_load_stats(const mm_session* session, mm_load_stats* out_stats);

/* What a token costs in a plan, from its weights and model shape. */
typedef struct mm_plan_costs {
  uint64_t expert_weight_bytes;   /* stacked expert weights, all layers and experts */
  uint64_t embedding_bytes;       /* the embedding table, of which a token reads one row: */
  uint64_t embedding_row_bytes;
  uint64_t other_weight_bytes;    /* every other weight (attention, norms, router, lm_head) */
  int64_t num_experts;
  int64_t top_k;
  uint64_t kv_bytes_per_token;    /* K and V (+ fp8 scales) of one position, all layers */
  double linear_flops_per_token;  /* 2 x multiply-adds of every linear a token passes (top_k
                                     experts per layer) and the lm_head */
  double attention_flops_per_position; /* per token and attended position: 4 x heads x head_dim
                                          x layers */
} mm_plan_costs;
mm_status mm_plan_get_costs(const mm_plan* plan, mm_plan_costs* out_costs);

typedef struct mm_device_measurement {
  char device[128];              /* "NVIDIA H200 (sm_90)" or "host (16 threads)" */
  double copy_bytes_per_second;  /* device-to-device copy (host: memcpy), read + write counted */
  uint64_t copy_bytes;           /* size of the copied buffer */
  double gemm_flops_per_second;  /* bf16 GEMM with fp32 accumulation (cuBLAS); 0 when unavailable */
  char gemm[384];                /* what was measured, or "n/a: " and why */
} mm_device_measurement;
/* device: "cuda", "host" or NULL (cuda if usable); threads: host copy threads (0: every core).
 * Opens its own CUDA context and frees what it allocates: call it before sessions fill the device. */
mm_status mm_measure_device(const char* device, int32_t threads, mm_device_measurement* out);

/* The plan's shard files in weights_dir: the share of their bytes in the page cache (mincore),
 * after asking the kernel to drop them when drop != 0 (POSIX_FADV_DONTNEED: clean, unmapped pages
 * only; no root needed). */
mm_status mm_weights_page_cache(const mm_plan* plan, const char* weights_dir, int32_t drop,
                                double* resident_share);

typedef struct mm_read_measurement {
  uint64_t bytes;
  int32_t files;
  double seconds;
} mm_read_measurement;
/* Reads the plan's shard files whole, one after the other, with 8 MiB read(2) calls through the
 * page cache as `cat` does, dropping the cache behind: the sequential rate of the disk that the
 * weight loader is compared with. */
mm_status mm_measure_read(const mm_plan* plan, const char* weights_dir, mm_read_measurement* out);

#ifdef __cplusplus
}
#endif

#endif
