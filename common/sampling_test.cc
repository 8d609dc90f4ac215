#include "common/sampling.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "gtest/gtest.h"
#include "sampling_decision.h"

namespace apq {
namespace {

TEST(SamplingPlanTest, ExactWalksEverything) {
  absl::StatusOr<SamplingPlan> plan = SamplingPlan::ForSampleBytes(0);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->exact());
  for (int order = 0; order < kNumOrders; ++order) {
    EXPECT_EQ(plan->threshold(order), uint64_t{1} << 32);
    EXPECT_EQ(plan->EstimateBytes(order, 3), 3.0 * kPageSize);
    EXPECT_EQ(plan->EstimateVariance(order, 3), 0.0);
  }
}

TEST(SamplingPlanTest, ProbabilityFollowsAllocationSize) {
  absl::StatusOr<SamplingPlan> plan = SamplingPlan::ForSampleBytes(512 * 1024);
  ASSERT_TRUE(plan.ok());
  EXPECT_NEAR(plan->probability(0), -std::expm1(-4096.0 / (512 * 1024)), 1e-9);
  EXPECT_NEAR(plan->probability(7), 1 - std::exp(-1.0), 1e-9);  // 512 KiB allocation
  for (int order = 1; order < kNumOrders; ++order) EXPECT_GT(plan->probability(order), plan->probability(order - 1));
}

TEST(SamplingPlanTest, RejectsAbsurdRates) { EXPECT_FALSE(SamplingPlan::ForSampleBytes(uint64_t{1} << 41).ok()); }

TEST(SamplingPlanTest, HugeRateStillSamplesSometimes) {
  absl::StatusOr<SamplingPlan> plan = SamplingPlan::ForSampleBytes(uint64_t{1} << 40);
  ASSERT_TRUE(plan.ok());
  EXPECT_GE(plan->threshold(0), 1u);
}

// Each order is decided by its own entry: the thresholds differ from order
// to order, so an index that mixed two orders up (the mask `order & 10` once
// did, for orders 1, 3-7 and 9) changes the decision here.
TEST(SamplingPlanTest, EveryOrderIsDecidedByItsOwnEntry) {
  SamplingPlan plan = *SamplingPlan::ForSampleBytes(512 * 1024);
  for (__u32 order = 0; order < kNumOrders; ++order) {
    EXPECT_EQ(apq_sample_threshold(plan.thresholds().data(), order), plan.thresholds()[order]) << "order " << order;
    EXPECT_EQ(plan.threshold(static_cast<int>(order)), plan.thresholds()[order]) << "order " << order;
    if (order > 0) {
      EXPECT_GT(plan.thresholds()[order], plan.thresholds()[order - 1]) << "order " << order;
    }
  }
  // Orders past the plan take its last entry (the BPF program never passes one).
  EXPECT_EQ(apq_sample_threshold(plan.thresholds().data(), kNumOrders), plan.thresholds()[kNumOrders - 1]);
  EXPECT_EQ(apq_sample_threshold(plan.thresholds().data(), ~0u), plan.thresholds()[kNumOrders - 1]);
}

// Draws the decision the BPF program makes, through the function it calls
// on the array it is loaded with, and checks that the weighted estimate is
// unbiased and its variance estimate matches the spread.
void CheckUnbiased(uint64_t sample_bytes, int order, uint64_t allocations) {
  SamplingPlan plan = *SamplingPlan::ForSampleBytes(sample_bytes);
  std::mt19937 rng(12345 + order);
  const int trials = 4000;
  const uint64_t pages_per_allocation = uint64_t{1} << order;
  const double truth = static_cast<double>(allocations * pages_per_allocation * kPageSize);
  const __u64 threshold = apq_sample_threshold(plan.thresholds().data(), static_cast<__u32>(order));
  double sum = 0, sum_squares = 0, sum_variance_estimates = 0;
  for (int t = 0; t < trials; ++t) {
    uint64_t sampled_pages = 0;
    for (uint64_t a = 0; a < allocations; ++a) {
      if (static_cast<uint64_t>(rng()) < threshold) sampled_pages += pages_per_allocation;
    }
    double estimate = plan.EstimateBytes(order, sampled_pages);
    sum += estimate;
    sum_squares += estimate * estimate;
    sum_variance_estimates += plan.EstimateVariance(order, sampled_pages);
  }
  double mean = sum / trials;
  double empirical_variance = sum_squares / trials - mean * mean;
  double standard_error_of_mean = std::sqrt(empirical_variance / trials);
  EXPECT_NEAR(mean, truth, 4 * standard_error_of_mean) << "order " << order;
  if (empirical_variance > 0) {
    EXPECT_NEAR(sum_variance_estimates / trials / empirical_variance, 1.0, 0.1) << "order " << order;
  } else {
    EXPECT_EQ(sum_variance_estimates, 0.0) << "order " << order;  // sampled with certainty
  }
  // The relative standard error is near sqrt(N/B) for small allocations.
  if (order == 0) {
    EXPECT_NEAR(std::sqrt(empirical_variance) / truth, std::sqrt(double(sample_bytes) / truth), 0.01);
  }
}

// Every order the tracker keeps, each at the fleet default and at a rate
// where even order 10 is sampled with a probability well below one.
TEST(SamplingPlanTest, EstimatesAreUnbiasedForEveryOrder) {
  for (uint64_t sample_bytes : {uint64_t{512} * 1024, uint64_t{64} << 20}) {
    for (int order = 0; order < kNumOrders; ++order) {
      CheckUnbiased(sample_bytes, order, std::max<uint64_t>(16384 >> order, 256));
    }
  }
}

}  // namespace
}  // namespace apq
