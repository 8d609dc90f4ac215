/* The per-page ownership state machine, shared by the BPF tracker and the
 * userspace unit tests so that the code under test is the code that runs.
 *
 * Every page of an allocation is owned separately, so a free of any order
 * releases exactly the pages it names: split pages, exact-allocation tails
 * and partial frees need no hooks of their own.
 *
 * The includer defines:
 *   APQ_PAGE_SLOT(pfn)        -> __u32 * owner slot of that page, NULL if out of range
 *   APQ_PAGE_TABLE_SIZE       number of slots: pfns below it have one
 *   APQ_OWNER_COUNTERS(id)    -> struct apq_owner_counters *, NULL if out of range
 *   APQ_ATOMIC_ADD(ptr, val)  atomic add (result unused)
 *   APQ_COUNT(counter, n)     add n to a global apq_counter
 */
#ifndef APQ_BPF_PAGE_STATE_MACHINE_H_
#define APQ_BPF_PAGE_STATE_MACHINE_H_

#include "page_tracker.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* The per-page steps are separate functions: in BPF they are global
 * functions, verified once rather than once per loop iteration, and the
 * loops carry no accumulators (the verifier would explore every combination
 * of their values). Together this keeps the 1024-page loops within the
 * verifier's budget on 5.10, which has no bpf_loop. */
#ifndef APQ_PAGE_STEP
#define APQ_PAGE_STEP static inline
#endif

/* Takes `pages` pages away from `owner` (freed, or found reused). */
APQ_PAGE_STEP int apq_release_from_owner(__u32 owner, __u64 pages) {
  struct apq_owner_counters *counters;

  if (owner == APQ_OWNER_NONE || pages == 0) return 0;
  counters = APQ_OWNER_COUNTERS(owner);
  if (!counters) return 0;
  APQ_ATOMIC_ADD(&counters->pages_outstanding, -(__s64)pages);
  return 0;
}

/* Gives one page to owner. A page still owned lost its free event: it is
 * taken from the old owner so that the old count does not stay up forever. */
APQ_PAGE_STEP int apq_claim_page(__u64 pfn, __u32 owner) {
  __u32 *slot = APQ_PAGE_SLOT(pfn);
  __u32 previous;

  if (!slot) return 0; /* counted by apq_claim_pages */
  previous = *slot;
  *slot = owner;
  if (previous != APQ_OWNER_NONE) {
    APQ_COUNT(APQ_CTR_ALLOC_OVER_LIVE_PAGES, 1);
    apq_release_from_owner(previous, 1);
  }
  return 0;
}

/* Frees one page, whatever allocation it came from. */
APQ_PAGE_STEP int apq_release_page(__u64 pfn) {
  __u32 *slot = APQ_PAGE_SLOT(pfn);
  __u32 owner;

  if (!slot) return 0; /* counted by apq_release_pages */
  owner = *slot;
  if (owner == APQ_OWNER_NONE) {
    APQ_COUNT(APQ_CTR_FREE_UNKNOWN_PAGES, 1);
    return 0;
  }
  *slot = APQ_OWNER_NONE;
  apq_release_from_owner(owner, 1);
  return 0;
}

/* Gives one page, allocated on a path without a tracepoint, to owner,
 * unless the tracepoint already gave it one (the bulk allocator falls back
 * to the traced allocator). */
APQ_PAGE_STEP int apq_claim_untracked_page(__u64 pfn, __u32 owner) {
  struct apq_owner_counters *counters;
  __u32 *slot = APQ_PAGE_SLOT(pfn);

  if (!slot) {
    APQ_COUNT(APQ_CTR_PFN_OUT_OF_RANGE, 1);
    return 0;
  }
  if (*slot != APQ_OWNER_NONE) return 0;
  *slot = owner;
  counters = APQ_OWNER_COUNTERS(owner);
  if (!counters) return 0;
  APQ_ATOMIC_ADD(&counters->pages_outstanding, 1);
  APQ_ATOMIC_ADD(&counters->pages_allocated, 1);
  return 1;
}

/* Migration copied page src to dst: dst now holds what src held, so it
 * takes src's owner (and leaves whoever allocated it as a migration
 * target). src keeps its owner until its own free. */
APQ_PAGE_STEP int apq_move_page(__u64 src_pfn, __u64 dst_pfn) {
  struct apq_owner_counters *counters;
  __u32 *src = APQ_PAGE_SLOT(src_pfn);
  __u32 *dst = APQ_PAGE_SLOT(dst_pfn);
  __u32 owner, previous;

  if (!src || !dst) {
    APQ_COUNT(APQ_CTR_PFN_OUT_OF_RANGE, 1);
    return 0;
  }
  owner = *src;
  if (owner == APQ_OWNER_NONE) return 0;
  previous = *dst;
  if (previous == owner) return 0;
  apq_release_from_owner(previous, 1);
  *dst = owner;
  counters = APQ_OWNER_COUNTERS(owner);
  if (!counters) return 0;
  APQ_ATOMIC_ADD(&counters->pages_outstanding, 1);
  APQ_ATOMIC_ADD(&counters->pages_allocated, 1);
  APQ_COUNT(APQ_CTR_MIGRATED_PAGES, 1);
  return 1;
}

/* A run of up to APQ_MAX_PAGES_PER_EVENT untracked pages. */
APQ_PAGE_STEP int apq_claim_untracked_run(__u64 pfn, __u32 npages, __u32 owner) {
  __u32 i;

  for (i = 0; i < APQ_MAX_PAGES_PER_EVENT; i++) {
    if (i >= npages) break;
    apq_claim_untracked_page(pfn + i, owner);
  }
  return 0;
}

/* How many of the npages pages at pfn lie below the page table's end. */
static __always_inline __u64 apq_pages_in_table(__u64 pfn, __u32 npages, __u64 table_size) {
  if (pfn >= table_size) return 0;
  return table_size - pfn < npages ? table_size - pfn : npages;
}

/* An allocation of 2^order pages at pfn, made by owner. */
static __always_inline void apq_claim_pages(__u64 pfn, __u32 order, __u32 owner) {
  struct apq_owner_counters *counters;
  __u32 npages = 1u << order;
  __u64 tracked = apq_pages_in_table(pfn, npages, APQ_PAGE_TABLE_SIZE);
  __u32 i;

  for (i = 0; i < APQ_MAX_PAGES_PER_EVENT; i++) {
    if (i >= npages) break;
    apq_claim_page(pfn + i, owner);
  }
  if (tracked < npages) APQ_COUNT(APQ_CTR_PFN_OUT_OF_RANGE, npages - tracked);
  counters = APQ_OWNER_COUNTERS(owner);
  if (!counters) return;
  APQ_ATOMIC_ADD(&counters->pages_outstanding, (__s64)tracked);
  APQ_ATOMIC_ADD(&counters->pages_allocated, tracked);
  APQ_ATOMIC_ADD(&counters->allocations, 1);
}

/* A free of 2^order pages at pfn, whatever order they were allocated with. */
static __always_inline void apq_release_pages(__u64 pfn, __u32 order) {
  __u32 npages = 1u << order;
  __u64 tracked = apq_pages_in_table(pfn, npages, APQ_PAGE_TABLE_SIZE);
  __u32 i;

  for (i = 0; i < APQ_MAX_PAGES_PER_EVENT; i++) {
    if (i >= npages) break;
    apq_release_page(pfn + i);
  }
  if (tracked < npages) APQ_COUNT(APQ_CTR_PFN_OUT_OF_RANGE, npages - tracked);
}

#endif /* APQ_BPF_PAGE_STATE_MACHINE_H_ */
