// SPDX-License-Identifier: GPL-2.0
/* Tracks every page the page allocator hands out until it is freed, and
 * attributes it to (kernel stack, process, cgroup, order). See
 * page_state_machine.h for the per-page bookkeeping. */
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "apq_vmlinux.h"
#include "page_tracker.h"
#include "sampling_decision.h"

/* Load-time settings, written by userspace before load. */
const volatile __u32 nr_cpus = 1;
const volatile __u32 max_owners = APQ_FIRST_OWNER_ID;
/* Entries of page_owner: one per pfn below the highest. */
const volatile __u64 page_table_size = 0;
/* Exact mode: every allocation's stack is walked. Flags are __u8, not
 * bool: the generated skeleton, included in C++, would spell bool _Bool,
 * which only GCC accepts there. */
const volatile __u8 walk_every_stack = 1;
/* Sampled mode: per-order thresholds, read through apq_sample_threshold. */
const volatile __u64 sample_threshold[APQ_NUM_ORDERS] = {};

/* Where the kernel does not count skipped tracepoint runs (before 6.7):
 * count them against the raw tracepoint witnesses (page_tracker.h). */
const volatile __u8 witness_skipped_runs = 0;
/* Set by userspace once both the tracepoints and their witnesses are
 * attached: runs before it are not compared. */
__u32 witness_armed = 0;

/* Paths without tracepoints hand over struct page pointers; pfn = (page -
 * vmemmap_base) / sizeof(struct page). vmemmap_base is randomized per boot
 * and absent from kallsyms on many kernels, so userspace measures it at
 * start: it sets calibration_tid, makes its thread allocate one page, and
 * the raw_tp (page pointer) and tracepoint (pfn) programs record that same
 * first event. Written through the skeleton's mapping of .bss/.data. */
__u64 vmemmap_base = 0;
__u32 calibration_tid = 0;
__u64 calibration_page = 0;
__u64 calibration_pfn = ~0ull;

/* Owner id of every page: pfn's slot is owners[pfn & 1] of entry pfn / 2.
 * Two pages per entry because array values are rounded up to 8 bytes: this
 * keeps the table at 4 bytes per page. Sized to the highest pfn. */
struct page_pair {
  __u32 owners[2];
};

/* Mmapped by userspace, which walks it against /proc/kpageflags to tell
 * how meminfo counts each owned page (common/page_classes.h). */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct page_pair);
} page_owner SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct apq_owner_counters);
} owner_counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1);
  __type(key, struct apq_owner_key);
  __type(value, __u32);
} owner_ids SEC(".maps");

/* Owner ids userspace retired (no pages, idle, unlinked from owner_ids,
 * counters zeroed): taken before new ones are drawn, so a host that runs
 * short-lived processes for months never fills the owner table. */
struct {
  __uint(type, BPF_MAP_TYPE_QUEUE);
  __uint(max_entries, 1);
  __type(value, __u32);
} free_owner_ids SEC(".maps");

/* Bumped by userspace whenever it unlinks owners: a per-CPU cache entry of
 * an older generation may name an unlinked owner and is not used. */
__u32 owner_generation = 0;

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1);
  __type(key, struct apq_stack_key);
  __type(value, __u32);
} stack_ids SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct apq_process_name);
} process_names SEC(".maps");

/* One frame more than a stack key holds, to notice truncation. */
struct stack_scratch {
  __u64 ips[APQ_MAX_STACK_DEPTH + 1];
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct stack_scratch);
} stack_scratch SEC(".maps");

/* The last owner each CPU resolved: consecutive allocations mostly come from
 * the same (stack, process, cgroup, order). Valid while owner_generation
 * is the one it was filled under. */
struct owner_cache {
  struct apq_owner_key key;
  __u32 id;
  __u32 generation;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct owner_cache);
} last_owner SEC(".maps");

enum id_sequence { SEQ_STACK, SEQ_OWNER, NR_SEQ };

/* Per-CPU id sequences: id = seq * nr_cpus + cpu is unique without the
 * fetch-and-add instruction that 5.10 lacks. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, NR_SEQ);
  __type(key, __u32);
  __type(value, __u32);
} id_sequences SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, APQ_NR_COUNTERS);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, APQ_NR_TRACEPOINTS);
  __type(key, __u32);
  __type(value, struct apq_tracepoint_runs);
} tracepoint_runs SEC(".maps");

static __always_inline void note_run(enum apq_tracepoint which, bool witness) {
  __u32 key = which;
  struct apq_tracepoint_runs *runs = bpf_map_lookup_elem(&tracepoint_runs, &key);

  if (!runs || !witness_armed) return;
  if (witness) runs->witnessed++;
  else runs->handled++;
}

static __always_inline void count(enum apq_counter which, __u64 n) {
  __u32 key = which;
  __u64 *value = bpf_map_lookup_elem(&counters, &key);

  if (value) *value += n;
}

static __always_inline __u32 *page_slot(__u64 pfn) {
  __u32 key = (__u32)(pfn >> 1);
  struct page_pair *pair;

  if (pfn >= page_table_size) return 0;
  pair = bpf_map_lookup_elem(&page_owner, &key);
  return pair ? &pair->owners[pfn & 1] : 0;
}

static __always_inline struct apq_owner_counters *counters_of(__u32 owner) {
  return bpf_map_lookup_elem(&owner_counters, &owner);
}

#define APQ_PAGE_SLOT(pfn) page_slot(pfn)
#define APQ_PAGE_TABLE_SIZE page_table_size
#define APQ_OWNER_COUNTERS(id) counters_of(id)
#define APQ_ATOMIC_ADD(ptr, val) __sync_fetch_and_add((ptr), (val))
#define APQ_COUNT(which, n) count((which), (n))
#define APQ_PAGE_STEP __attribute__((noinline))
#include "page_state_machine.h"

/* Returns a sequence number unique to this CPU, or -1 if unavailable. */
static __always_inline __s64 next_sequence(enum id_sequence which) {
  __u32 key = which;
  __u32 *seq = bpf_map_lookup_elem(&id_sequences, &key);

  if (!seq) return -1;
  return (*seq)++;
}

static __always_inline __u64 unique_id(__s64 seq) {
  return (__u64)seq * nr_cpus + bpf_get_smp_processor_id();
}

static __always_inline __u32 stack_of(void *ctx) {
  __u32 zero = 0, id;
  __u32 *existing;
  struct stack_scratch *scratch = bpf_map_lookup_elem(&stack_scratch, &zero);
  long copied;
  __s64 seq;

  if (!scratch) return APQ_STACK_LOST;
  /* bpf_get_stack zero-fills what it does not write, so the key is exact. */
  copied = bpf_get_stack(ctx, scratch->ips, sizeof(scratch->ips), 0);
  if (copied <= 0) {
    count(APQ_CTR_STACK_WALK_FAILED, 1);
    return APQ_STACK_LOST;
  }
  if (copied >= (long)sizeof(scratch->ips)) count(APQ_CTR_STACK_TRUNCATED, 1);

  existing = bpf_map_lookup_elem(&stack_ids, scratch);
  if (existing) return *existing;
  seq = next_sequence(SEQ_STACK);
  if (seq < 0 || unique_id(seq) >= APQ_STACK_LOST) {
    count(APQ_CTR_STACK_TABLE_FULL, 1);
    return APQ_STACK_LOST;
  }
  id = (__u32)unique_id(seq);
  if (bpf_map_update_elem(&stack_ids, scratch, &id, BPF_NOEXIST) == 0) {
    count(APQ_CTR_STACKS_CREATED, 1);
    return id;
  }
  existing = bpf_map_lookup_elem(&stack_ids, scratch);
  if (existing) return *existing; /* another CPU inserted it first */
  count(APQ_CTR_STACK_TABLE_FULL, 1);
  return APQ_STACK_LOST;
}

static __always_inline void remember_process_name(__u32 tgid) {
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct task_struct *leader = BPF_CORE_READ(task, group_leader);
  struct apq_process_name name = {};

  bpf_core_read_str(name.comm, sizeof(name.comm), &leader->comm);
  bpf_map_update_elem(&process_names, &tgid, &name, BPF_ANY);
}

static __always_inline bool same_owner_key(const struct apq_owner_key *a, const struct apq_owner_key *b) {
  return a->stack_id == b->stack_id && a->tgid == b->tgid && a->cgroup_id == b->cgroup_id && a->order == b->order;
}

static __always_inline __u32 interned_owner(struct apq_owner_key *key);

static __always_inline __u32 owner_of(struct apq_owner_key *key) {
  __u32 zero = 0, id;
  struct owner_cache *cache = bpf_map_lookup_elem(&last_owner, &zero);

  __u32 generation = owner_generation;

  if (cache && cache->id != APQ_OWNER_NONE && cache->generation == generation && same_owner_key(&cache->key, key)) {
    return cache->id;
  }
  id = interned_owner(key);
  /* The overflow owner is not cached: a later allocation may find room. */
  if (cache && id != APQ_OWNER_OVERFLOW) {
    cache->key = *key;
    cache->id = id;
    cache->generation = generation;
  }
  return id;
}

static __always_inline __u32 interned_owner(struct apq_owner_key *key) {
  __u32 *existing = bpf_map_lookup_elem(&owner_ids, key);
  __s64 seq;
  __u64 id;
  __u32 id32;

  bool reused;

  if (existing) return *existing;
  reused = bpf_map_pop_elem(&free_owner_ids, &id32) == 0;
  if (!reused) {
    seq = next_sequence(SEQ_OWNER);
    id = seq < 0 ? max_owners : APQ_FIRST_OWNER_ID + unique_id(seq);
    if (id >= max_owners) goto full;
    id32 = (__u32)id;
  }
  if (bpf_map_update_elem(&owner_ids, key, &id32, BPF_NOEXIST) == 0) {
    count(APQ_CTR_OWNERS_CREATED, 1);
    remember_process_name(key->tgid);
    return id32;
  }
  /* Another CPU interned this key first (or the table is full): a reused id goes back. */
  if (reused) bpf_map_push_elem(&free_owner_ids, &id32, BPF_ANY);
  existing = bpf_map_lookup_elem(&owner_ids, key);
  if (existing) return *existing;
full:
  count(APQ_CTR_OWNER_TABLE_FULL, 1);
  return APQ_OWNER_OVERFLOW;
}

/* The owner of an allocation of 2^order pages made here and now: the stack
 * is walked in exact mode, or with the probability of the sampling plan. */
static __always_inline __u32 current_owner(void *ctx, __u32 order) {
  struct apq_owner_key key = {};

  if (walk_every_stack || (__u64)bpf_get_prandom_u32() < apq_sample_threshold(sample_threshold, order)) {
    key.stack_id = stack_of(ctx);
    count(APQ_CTR_SAMPLED_ALLOCS, 1);
  } else {
    key.stack_id = APQ_STACK_UNSAMPLED;
  }
  key.tgid = bpf_get_current_pid_tgid() >> 32;
  key.cgroup_id = bpf_get_current_cgroup_id();
  key.order = order;
  return owner_of(&key);
}

static __always_inline bool calibrating(void) {
  return calibration_tid != 0 && (__u32)bpf_get_current_pid_tgid() == calibration_tid;
}

SEC("tracepoint/kmem/mm_page_alloc")
int apq_page_alloc(struct trace_event_raw_mm_page_alloc *ctx) {
  __u64 pfn = ctx->pfn;
  __u32 order = ctx->order;

  if (witness_skipped_runs) note_run(APQ_TP_PAGE_ALLOC, false);

  if (pfn == ~0ull) {
    count(APQ_CTR_FAILED_ALLOCS, 1);
    return 0;
  }
  if (order >= APQ_NUM_ORDERS) {
    count(APQ_CTR_ORDER_TOO_LARGE, 1);
    return 0;
  }
  count(APQ_CTR_ALLOC_EVENTS, 1);
  count(APQ_CTR_ALLOC_PAGES, 1ull << order);
  if (calibrating() && calibration_pfn == ~0ull) calibration_pfn = pfn;
  apq_claim_pages(pfn, order, current_owner(ctx, order));
  return 0;
}

/* Loaded only where fentry/fexit work, for the calibration. */
SEC("raw_tp/mm_page_alloc")
int apq_calibrate(struct bpf_raw_tracepoint_args *ctx) {
  if (calibrating() && calibration_page == 0) calibration_page = ctx->args[0];
  return 0;
}

static __always_inline __u64 pfn_of(__u64 page) {
  return (page - vmemmap_base) / bpf_core_type_size(struct page);
}

/* Reads argument slot n of a tracing context. Older verifiers refuse a typed
 * ctx load of a pointer-to-pointer argument (struct page **), and arithmetic on typed
 * pointers (struct folio *), so the slot is copied instead. */
static __always_inline __u64 raw_arg(__u64 *ctx, int n) {
  __u64 value = 0;

  bpf_probe_read_kernel(&value, sizeof(value), &ctx[n]);
  return value;
}

/* One entry of a bulk allocation's page array. */
__attribute__((noinline)) int apq_claim_bulk_entry(__u64 page_array, __u32 index, __u32 owner) {
  __u64 page = 0;

  if (bpf_probe_read_kernel(&page, sizeof(page), (void *)(page_array + index * sizeof(__u64))) != 0 || page == 0) {
    return 0;
  }
  return apq_claim_untracked_page(pfn_of(page), owner);
}

/* alloc_pages_bulk*: fills page_array (or a list) without mm_page_alloc. */
static __always_inline int bulk_exit(void *ctx, __u64 page_array, __u64 populated) {
  struct apq_owner_counters *counters;
  __u32 owner, i;

  if (populated == 0) return 0;
  if (!page_array) {
    count(APQ_CTR_BULK_LIST_UNSEEN, 1);
    return 0;
  }
  if (vmemmap_base == 0) {
    count(APQ_CTR_UNCALIBRATED, 1);
    return 0;
  }
  owner = current_owner(ctx, 0);
  for (i = 0; i < APQ_MAX_BULK_PAGES; i++) {
    if (i >= populated) break;
    apq_claim_bulk_entry(page_array, i, owner);
  }
  if (populated > APQ_MAX_BULK_PAGES) count(APQ_CTR_BULK_TOO_LARGE, populated - APQ_MAX_BULK_PAGES);
  count(APQ_CTR_BULK_PAGES, populated);
  counters = counters_of(owner);
  if (counters) __sync_fetch_and_add(&counters->allocations, 1);
  return 0;
}

/* Up to 6.13: (gfp, nid, nodemask, nr_pages, page_list, page_array). */
SEC("fexit/__alloc_pages_bulk")
int apq_bulk_exit_with_list(__u64 *ctx) { return bulk_exit(ctx, raw_arg(ctx, 5), ctx[6]); }

/* 6.14 on: (gfp, nid, nodemask, nr_pages, page_array). */
SEC("fexit/alloc_pages_bulk_noprof")
int apq_bulk_exit(__u64 *ctx) { return bulk_exit(ctx, raw_arg(ctx, 4), ctx[5]); }

/* Chunk `chunk` of [start, end); returns 1 past the end. Global, so the
 * caller's loop stays free of arithmetic the verifier would track. */
__attribute__((noinline)) int apq_claim_contig_chunk(__u64 start, __u64 end, __u32 chunk, __u32 owner) {
  __u64 base = start + (__u64)chunk * APQ_MAX_PAGES_PER_EVENT;

  if (base >= end) return 1;
  apq_claim_untracked_run(base, end - base < APQ_MAX_PAGES_PER_EVENT ? end - base : APQ_MAX_PAGES_PER_EVENT, owner);
  return 0;
}

/* alloc_contig_range*: pfns [start, end) taken without mm_page_alloc (CMA,
 * gigantic hugetlb pages); freed later page by page through mm_page_free. */
SEC("fexit/alloc_contig_range")
int apq_contig_exit(__u64 *ctx) {
  struct apq_owner_counters *counters;
  __u64 start = ctx[0], end = ctx[1];
  int result = (int)ctx[4];
  __u32 owner, chunk;

  if (result != 0 || end <= start) return 0;
  owner = current_owner(ctx, APQ_NUM_ORDERS - 1);
  for (chunk = 0; chunk < APQ_MAX_CONTIG_CHUNKS; chunk++) {
    if (apq_claim_contig_chunk(start, end, chunk, owner)) break;
  }
  if (end - start > (__u64)APQ_MAX_CONTIG_CHUNKS * APQ_MAX_PAGES_PER_EVENT) {
    count(APQ_CTR_CONTIG_TOO_LARGE, end - start - (__u64)APQ_MAX_CONTIG_CHUNKS * APQ_MAX_PAGES_PER_EVENT);
  }
  count(APQ_CTR_CONTIG_PAGES, end - start);
  counters = counters_of(owner);
  if (counters) __sync_fetch_and_add(&counters->allocations, 1);
  return 0;
}

static __always_inline __u32 folio_order(struct folio *folio) {
  unsigned long flags = BPF_CORE_READ(folio, flags);

  if (!(flags & (1ul << bpf_core_enum_value(enum pageflags, PG_head)))) return 0;
  if (bpf_core_field_exists(folio->_folio_order)) return BPF_CORE_READ(folio, _folio_order);
  if (bpf_core_field_exists(folio->_flags_1)) return BPF_CORE_READ(folio, _flags_1) & 0xff;
  return 0;
}

/* Migration (compaction, NUMA balancing, CMA, memory offlining) copies a
 * folio or page into pages that never had an allocation event; the owner of
 * each of its 2^order pages follows the contents. */
static __always_inline int move_owners(__u64 dst, __u64 src, __u32 order) {
  __u64 src_pfn, dst_pfn;
  __u32 i;

  if (vmemmap_base == 0) {
    count(APQ_CTR_UNCALIBRATED, 1);
    return 0;
  }
  if (order >= APQ_NUM_ORDERS) order = APQ_NUM_ORDERS - 1;
  src_pfn = pfn_of(src);
  dst_pfn = pfn_of(dst);
  for (i = 0; i < APQ_MAX_PAGES_PER_EVENT; i++) {
    if (i >= (1u << order)) break;
    apq_move_page(src_pfn + i, dst_pfn + i);
  }
  return 0;
}

/* 5.16 on: folio_migrate_flags(newfolio, folio). */
SEC("fentry/folio_migrate_flags")
int apq_migrate_entry(__u64 *ctx) {
  __u64 dst = raw_arg(ctx, 0), src = raw_arg(ctx, 1);

  return move_owners(dst, src, folio_order((struct folio *)src));
}

/* A compound page's order, from its first tail page (kernels before folios). */
static __always_inline __u32 compound_page_order(__u64 page) {
  unsigned long flags = BPF_CORE_READ((struct page *)page, flags);
  struct page *first_tail = (struct page *)(page + bpf_core_type_size(struct page));

  if (!(flags & (1ul << bpf_core_enum_value(enum pageflags, PG_head)))) return 0;
  if (bpf_core_field_exists(first_tail->compound_order)) return BPF_CORE_READ(first_tail, compound_order);
  return 0;
}

/* 5.10..5.15: migrate_page_states(newpage, page), once per (compound) page. */
SEC("fentry/migrate_page_states")
int apq_migrate_page_entry(__u64 *ctx) {
  __u64 dst = raw_arg(ctx, 0), src = raw_arg(ctx, 1);

  return move_owners(dst, src, compound_page_order(src));
}

SEC("tracepoint/kmem/mm_page_free")
int apq_page_free(struct trace_event_raw_mm_page_free *ctx) {
  __u64 pfn = ctx->pfn;
  __u32 order = ctx->order;

  if (witness_skipped_runs) note_run(APQ_TP_PAGE_FREE, false);

  if (order >= APQ_NUM_ORDERS) {
    count(APQ_CTR_ORDER_TOO_LARGE, 1);
    return 0;
  }
  count(APQ_CTR_FREE_EVENTS, 1);
  count(APQ_CTR_FREE_PAGES, 1ull << order);
  apq_release_pages(pfn, order);
  return 0;
}

/* The witnesses: loaded only where witness_skipped_runs is set. */
SEC("raw_tp/mm_page_alloc")
int apq_witness_alloc(void *ctx) {
  note_run(APQ_TP_PAGE_ALLOC, true);
  return 0;
}

SEC("raw_tp/mm_page_free")
int apq_witness_free(void *ctx) {
  note_run(APQ_TP_PAGE_FREE, true);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
