#include "agent/report.h"

#include <map>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "common/losses.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

using ::testing::HasSubstr;

// Each BPF loss counter reaches the wire's field of its name (each given a
// value of its own here), and every field of apq.v1.Losses is a BPF counter
// or one of the two the agent counts itself: no loss is left out of either.
TEST(LossesTest, EveryLossCounterHasItsWireField) {
  TrackerSnapshot snapshot;
  snapshot.recursion_misses = -1;
  std::map<std::string, int64_t> expected = {{"recursion_misses", -1}, {"reports_dropped", 0}};
  int64_t value = 100;
#define APQ_EXPECT_LOSS(name, field)         \
  snapshot.counters[APQ_CTR_##name] = value; \
  expected[#field] = value++;
  APQ_LOSS_COUNTERS(APQ_EXPECT_LOSS)
#undef APQ_EXPECT_LOSS
  const std::vector<std::pair<std::string, int64_t>> losses = LossValues(LossesOf(snapshot));
  const std::map<std::string, int64_t> reported(losses.begin(), losses.end());
  EXPECT_EQ(reported, expected);
  EXPECT_THAT(FormatLosses(LossesOf(snapshot)), HasSubstr("free-unknown-pages=100 alloc-over-live-pages=101"));
  EXPECT_THAT(FormatLosses(LossesOf(snapshot)), HasSubstr("recursion-misses=not-counted"));
}

}  // namespace
}  // namespace apq
