#include "common/sampling.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

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

// Draws the same decision the BPF program makes and checks that the weighted
// estimate is unbiased and its variance estimate matches the spread.
void CheckUnbiased(uint64_t sample_bytes, int order, uint64_t allocations) {
  SamplingPlan plan = *SamplingPlan::ForSampleBytes(sample_bytes);
  std::mt19937 rng(12345 + order);
  const int trials = 4000;
  const uint64_t pages_per_allocation = uint64_t{1} << order;
  const double truth = static_cast<double>(allocations * pages_per_allocation * kPageSize);
  double sum = 0, sum_squares = 0, sum_variance_estimates = 0;
  for (int t = 0; t < trials; ++t) {
    uint64_t sampled_pages = 0;
    for (uint64_t a = 0; a < allocations; ++a) {
      if (static_cast<uint64_t>(rng()) < plan.threshold(order)) sampled_pages += pages_per_allocation;
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
  EXPECT_NEAR(sum_variance_estimates / trials / empirical_variance, 1.0, 0.1) << "order " << order;
  // The relative standard error is near sqrt(N/B) for small allocations.
  if (order == 0) {
    EXPECT_NEAR(std::sqrt(empirical_variance) / truth, std::sqrt(double(sample_bytes) / truth), 0.01);
  }
}

TEST(SamplingPlanTest, EstimatesAreUnbiasedForSmallAllocations) { CheckUnbiased(512 * 1024, 0, 16384); }
TEST(SamplingPlanTest, EstimatesAreUnbiasedForLargeAllocations) { CheckUnbiased(512 * 1024, 6, 2000); }

}  // namespace
}  // namespace apq
