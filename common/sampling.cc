#include "common/sampling.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sampling_decision.h"

namespace apq {
namespace {
constexpr uint64_t kAlways = uint64_t{1} << 32;
constexpr uint64_t kMaxSampleBytes = uint64_t{1} << 40;
}  // namespace

absl::StatusOr<SamplingPlan> SamplingPlan::ForSampleBytes(uint64_t sample_bytes) {
  if (sample_bytes > kMaxSampleBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--sample-bytes ", sample_bytes, " is above the limit of ", kMaxSampleBytes));
  }
  SamplingPlan plan;
  plan.sample_bytes_ = sample_bytes;
  for (int order = 0; order < kNumOrders; ++order) {
    if (sample_bytes == 0) {
      plan.thresholds_[order] = kAlways;
      continue;
    }
    double bytes = static_cast<double>(kPageSize << order);
    double p = -std::expm1(-bytes / static_cast<double>(sample_bytes));
    auto threshold = static_cast<uint64_t>(std::llround(p * static_cast<double>(kAlways)));
    // Never 0: a path must always be able to show up.
    plan.thresholds_[order] = std::clamp<uint64_t>(threshold, 1, kAlways);
  }
  return plan;
}

uint64_t SamplingPlan::threshold(int order) const {
  return apq_sample_threshold(thresholds_.data(), static_cast<__u32>(order));
}

double SamplingPlan::probability(int order) const {
  return static_cast<double>(threshold(order)) / static_cast<double>(kAlways);
}

double SamplingPlan::EstimateBytes(int order, uint64_t pages) const {
  return static_cast<double>(pages * kPageSize) / probability(order);
}

double SamplingPlan::EstimateVariance(int order, uint64_t pages) const {
  // An allocation of s bytes kept with probability p, weighted s/p, has
  // variance s^2 (1-p)/p; its unbiased estimate from a sample is
  // s^2 (1-p)/p^2. Each of its pages carries 4096/s of that.
  double p = probability(order);
  double allocation_bytes = static_cast<double>(kPageSize << order);
  return static_cast<double>(pages * kPageSize) * allocation_bytes * (1 - p) / (p * p);
}

}  // namespace apq
