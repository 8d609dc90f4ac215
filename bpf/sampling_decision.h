/* The sampled-mode decision, shared by the BPF tracker and userspace's
 * weights (common/sampling.cc): the probability a page was sampled with and
 * the weight it is given come from the same entry of the same array,
 * through this one function. */
#ifndef APQ_BPF_SAMPLING_DECISION_H_
#define APQ_BPF_SAMPLING_DECISION_H_

#include "page_tracker.h"

/* The stack of an allocation of 2^order pages is walked when a uniform
 * 32-bit random number is below this threshold (2^32: always). Orders
 * beyond the plan take its last entry; the bound also proves the index to
 * the verifier. */
static inline __u64 apq_sample_threshold(const volatile __u64 *thresholds, __u32 order) {
  return thresholds[order < APQ_NUM_ORDERS ? order : APQ_NUM_ORDERS - 1];
}

#endif /* APQ_BPF_SAMPLING_DECISION_H_ */
