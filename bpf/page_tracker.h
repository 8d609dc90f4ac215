/* Plain fixed-width types shared by page_tracker.bpf.c and userspace. */
#ifndef APQ_BPF_PAGE_TRACKER_H_
#define APQ_BPF_PAGE_TRACKER_H_

#ifdef __BPF__
/* vmlinux types come from apq_vmlinux.h */
#else
#include <linux/types.h>
#endif

/* Frames kept per stack. Deeper stacks lose their root-most frames and are
 * counted in APQ_CTR_STACK_TRUNCATED. */
#define APQ_MAX_STACK_DEPTH 64
/* Orders 0..10 (MAX_PAGE_ORDER / MAX_ORDER-1 on 5.10..6.18). A larger order
 * is counted in APQ_CTR_ORDER_TOO_LARGE and not tracked. */
#define APQ_NUM_ORDERS 11
#define APQ_MAX_PAGES_PER_EVENT (1u << (APQ_NUM_ORDERS - 1))
#define APQ_PAGE_SIZE 4096u
/* Bounds of the loops over one bulk or contiguous allocation. */
#define APQ_MAX_BULK_PAGES 4096u
#define APQ_MAX_CONTIG_CHUNKS 256u /* of APQ_MAX_PAGES_PER_EVENT pages: 1 GiB */

/* Stack ids with a meaning of their own; real ids are below these. The
 * wire (apq.v1.SeriesKey.stack_id) carries them as they are. */
#define APQ_STACK_UNSAMPLED 0xffffffffu /* sampled mode: stack not walked */
#define APQ_STACK_LOST 0xfffffffeu      /* walk failed or stack table full */

/* Owner id 0: page not tracked. Id 1: the overflow owner that takes pages
 * when the owner table is full, so totals stay exact. */
#define APQ_OWNER_NONE 0u
#define APQ_OWNER_OVERFLOW 1u
#define APQ_FIRST_OWNER_ID 2u

/* Who took a page: the call path, the process and cgroup, and the order of
 * the allocation (sampled mode weights a page by its allocation's order). */
struct apq_owner_key {
  __u32 stack_id;
  /* The task running when the page was taken; an allocation in interrupt
   * context is charged to the task it interrupted (tgid 0: the idle task). */
  __u32 tgid;
  __u64 cgroup_id;
  __u32 order;
  __u32 reserved; /* zero; keeps the key free of padding bytes */
};

/* Pages freed = pages_allocated - pages_outstanding: not kept, which saves
 * an atomic add on every free. */
struct apq_owner_counters {
  __s64 pages_outstanding;
  __u64 pages_allocated;
  __u64 allocations;
};

/* Key of the stack table: return addresses innermost first, zero padded. */
struct apq_stack_key {
  __u64 ips[APQ_MAX_STACK_DEPTH];
};

struct apq_process_name {
  char comm[16];
};

/* The tracker's loss counters: events or pages it could not attribute.
 * This list is their one definition: the loss entries of the BPF counter
 * enum below, and the agent's apq.v1.Losses (X's second argument is the
 * proto field's name: the agent sets each through it, so a counter without
 * its field does not compile); printouts follow apq.v1.Losses. */
#define APQ_LOSS_COUNTERS(X)                                                                \
  X(FREE_UNKNOWN_PAGES, free_unknown_pages)       /* freed pages never seen allocated */   \
  X(ALLOC_OVER_LIVE_PAGES, alloc_over_live_pages) /* allocated pages still owned: a free  \
                                                     was missed */                         \
  X(STACK_WALK_FAILED, stack_walk_failed)                                                   \
  X(STACK_TRUNCATED, stack_truncated)                                                       \
  X(STACK_TABLE_FULL, stack_table_full)                                                     \
  X(OWNER_TABLE_FULL, owner_table_full)           /* pages given to the overflow owner */  \
  X(PFN_OUT_OF_RANGE, pfn_out_of_range)           /* pages above the page table's size */  \
  X(ORDER_TOO_LARGE, order_too_large)                                                       \
  X(BULK_LIST_UNSEEN, bulk_list_unseen)           /* bulk calls filling a list, not an    \
                                                     array: not tracked */                 \
  X(BULK_TOO_LARGE, bulk_too_large)               /* bulk pages beyond APQ_MAX_BULK_PAGES \
                                                     in one call */                        \
  X(CONTIG_TOO_LARGE, contig_too_large)           /* contiguous pages beyond              \
                                                     APQ_MAX_CONTIG_CHUNKS in one call */  \
  X(UNCALIBRATED, uncalibrated)                   /* page-pointer events before           \
                                                     vmemmap_base was known */

#define APQ_LOSS_COUNTER_ENUM(name, field) APQ_CTR_##name,

/* Global event and loss counters (a per-CPU array, summed in userspace). */
enum apq_counter {
  APQ_CTR_ALLOC_EVENTS,
  APQ_CTR_ALLOC_PAGES,
  APQ_CTR_FREE_EVENTS,
  APQ_CTR_FREE_PAGES,
  APQ_CTR_FAILED_ALLOCS,          /* pfn -1: the allocation failed, nothing to track */
  APQ_CTR_SAMPLED_ALLOCS,         /* allocations whose stack was walked */
  APQ_CTR_BULK_PAGES,             /* pages from the bulk allocator (fexit) */
  APQ_CTR_CONTIG_PAGES,           /* pages from alloc_contig_range (fexit) */
  APQ_CTR_MIGRATED_PAGES,         /* pages whose owner moved to the migration target */
  APQ_CTR_STACKS_CREATED,
  APQ_CTR_OWNERS_CREATED,
  APQ_LOSS_COUNTERS(APQ_LOSS_COUNTER_ENUM)
  APQ_NR_COUNTERS,
};

/* Kernels before 6.7 skip a classic tracepoint program silently while
 * bpf_prog_active is raised on its CPU (another tracing program, or a BPF map
 * syscall such as the agent's own reads, with an interrupt landing in it). There
 * a raw tracepoint on the same event, which that never skips, witnesses
 * every run; the classic program counts the runs it handled beside it, in
 * the same per-CPU value, so the difference is the runs the kernel skipped. */
enum apq_tracepoint { APQ_TP_PAGE_ALLOC, APQ_TP_PAGE_FREE, APQ_NR_TRACEPOINTS };

struct apq_tracepoint_runs {
  __u64 witnessed;
  __u64 handled;
};

#endif /* APQ_BPF_PAGE_TRACKER_H_ */
