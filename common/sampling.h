#ifndef APQ_COMMON_SAMPLING_H_
#define APQ_COMMON_SAMPLING_H_

#include <array>
#include <cstdint>

#include "absl/status/statusor.h"
#include "page_tracker.h"

namespace apq {

inline constexpr int kNumOrders = APQ_NUM_ORDERS;
inline constexpr uint64_t kPageSize = APQ_PAGE_SIZE;

// Which allocations have their stack walked, and how sampled pages are
// weighted so that per-path estimates are unbiased.
//
// Sampling is by bytes, as heap profilers do it: allocations are points of a
// Poisson process with on average one sample per N bytes, so an allocation of
// s bytes is sampled with probability p(s) = 1 - exp(-s/N). The BPF program
// draws an independent uniform 32-bit number per allocation and compares it
// with a per-order threshold; this is the same distribution as a random
// countdown of bytes, without per-CPU countdown state. Estimates use p as the
// quantized threshold / 2^32, read through the same apq_sample_threshold
// (bpf/sampling_decision.h) from the same array the BPF program is loaded
// with, so the kernel's decision and the weight cannot disagree.
class SamplingPlan {
 public:
  // sample_bytes 0: every stack is walked (exact per path).
  static absl::StatusOr<SamplingPlan> ForSampleBytes(uint64_t sample_bytes);

  bool exact() const { return sample_bytes_ == 0; }
  uint64_t sample_bytes() const { return sample_bytes_; }
  // The stack of an order-o allocation is walked when rand32 < threshold(o).
  uint64_t threshold(int order) const;
  // What the BPF program is loaded with (its rodata sample_threshold).
  const std::array<__u64, kNumOrders>& thresholds() const { return thresholds_; }
  double probability(int order) const;

  // Unbiased estimate of the bytes that `pages` outstanding sampled pages of
  // order-`order` allocations stand for, and the estimate's variance.
  double EstimateBytes(int order, uint64_t pages) const;
  double EstimateVariance(int order, uint64_t pages) const;

 private:
  uint64_t sample_bytes_ = 0;
  std::array<__u64, kNumOrders> thresholds_{};
};

}  // namespace apq

#endif  // APQ_COMMON_SAMPLING_H_
