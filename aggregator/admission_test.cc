#include "aggregator/admission.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace apq {
namespace {

TEST(PeerGrantsTest, AgentsReportOnlyAsTheirCertificateSays) {
  const PeerGrants web17 = PeerGrants::FromAltNames({"DNS:ignored", "apq://agent/prod/web-17"});
  EXPECT_TRUE(web17.MayReport("prod", "web-17").ok());
  EXPECT_EQ(web17.MayReport("prod", "web-18").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(web17.MayReport("staging", "web-17").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(web17.MayRead("prod").code(), absl::StatusCode::kPermissionDenied) << "an agent is no reader";
  const absl::Status denied = web17.MayReport("staging", "web-17");
  EXPECT_NE(denied.message().find("report as prod/web-17"), absl::string_view::npos) << denied;

  const PeerGrants any_prod = PeerGrants::FromAltNames({"apq://agent/prod/*"});
  EXPECT_TRUE(any_prod.MayReport("prod", "anything").ok());
  EXPECT_FALSE(any_prod.MayReport("prod2", "anything").ok());
}

TEST(PeerGrantsTest, ReadersReadOnlyTheirClusters) {
  const PeerGrants alice = PeerGrants::FromAltNames({"apq://reader/prod", "apq://reader/staging"});
  EXPECT_TRUE(alice.MayRead("prod").ok());
  EXPECT_TRUE(alice.MayRead("staging").ok());
  EXPECT_EQ(alice.MayRead("billing").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(alice.MayReport("prod", "web-1").ok()) << "a reader is no agent";
  EXPECT_TRUE(PeerGrants::FromAltNames({"apq://reader/*"}).MayRead("billing").ok());
}

TEST(PeerGrantsTest, MalformedAndForeignNamesGrantNothing) {
  for (const char* name : {"apq://agent/prod", "apq://agent//web-1", "apq://agent/prod/", "apq://agent/prod/a/b",
                           "apq://reader/", "apq://reader/prod/x", "apq://admin/prod", "spiffe://prod/web-1",
                           "APQ://agent/prod/web-1", "apq:/agent/prod/web-1", ""}) {
    const PeerGrants grants = PeerGrants::FromAltNames({name});
    EXPECT_FALSE(grants.MayReport("prod", "web-1").ok()) << name;
    EXPECT_FALSE(grants.MayReport("prod", "a/b").ok()) << name;
    EXPECT_FALSE(grants.MayRead("prod").ok()) << name;
    EXPECT_FALSE(grants.MayRead("prod/x").ok()) << name;
  }
  const absl::Status denied = PeerGrants::FromAltNames({}).MayRead("prod");
  EXPECT_NE(denied.message().find("nothing"), absl::string_view::npos) << denied;
}

TEST(PeerGrantsTest, WithoutClientCertificatesEveryoneMayDoAll) {
  const PeerGrants everyone = PeerGrants::Everyone();
  EXPECT_TRUE(everyone.MayReport("prod", "web-1").ok());
  EXPECT_TRUE(everyone.MayRead("prod").ok());
}

TEST(HostRateLimiterTest, BurstThenRatePerHost) {
  HostRateLimiter limiter(1000, 10'000);  // 1000 bytes/s, bursts of 10,000
  EXPECT_TRUE(limiter.Take("prod/a", 10'000, 0));
  EXPECT_FALSE(limiter.Take("prod/a", 1, 0)) << "burst spent";
  EXPECT_TRUE(limiter.Take("prod/b", 10'000, 0)) << "another host has its own bucket";
  EXPECT_FALSE(limiter.Take("prod/a", 1001, 1000));
  EXPECT_TRUE(limiter.Take("prod/a", 1000, 1000)) << "one second refills 1000 bytes";
  EXPECT_FALSE(limiter.Take("prod/a", 1, 1000));
  EXPECT_TRUE(limiter.Take("prod/a", 10'000, 1'000'000)) << "refilled up to the burst, no further";
  EXPECT_FALSE(limiter.Take("prod/a", 1, 1'000'000));
  EXPECT_FALSE(limiter.Take("prod/a", 100, 990'000)) << "a clock stepped back refills nothing";
  EXPECT_TRUE(limiter.Take("prod/a", 1000, 991'000)) << "and holds nobody off beyond its own rate";
  EXPECT_FALSE(limiter.Take("prod/c", 10'001, 0)) << "more than a burst never passes";
}

TEST(HostRateLimiterTest, ZeroRateMeansNoLimit) {
  HostRateLimiter limiter(0, 0);
  EXPECT_TRUE(limiter.Take("prod/a", uint64_t{1} << 40, 0));
}

TEST(RefusalsTest, EveryReasonHasItsOwnLabelAndCounter) {
  RefusalCounts counts;
  std::set<std::string> labels;
  for (int r = 0; r < kNumRefusals; ++r) {
    const auto refusal = static_cast<Refusal>(r);
    EXPECT_TRUE(labels.insert(RefusalLabel(refusal)).second) << RefusalLabel(refusal);
    for (int i = 0; i <= r; ++i) counts.Count(refusal);
  }
  for (int r = 0; r < kNumRefusals; ++r) EXPECT_EQ(counts.Of(static_cast<Refusal>(r)), static_cast<uint64_t>(r + 1));
}

}  // namespace
}  // namespace apq
