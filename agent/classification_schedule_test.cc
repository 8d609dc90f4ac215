#include "agent/classification_schedule.h"

#include "gtest/gtest.h"

namespace apq {
namespace {

using Pass = ClassificationSchedule::Pass;

TEST(ClassificationScheduleTest, EveryReportReadsWhatChangedAndEveryIntervalAll) {
  ClassificationSchedule schedule(30, kFleetClassifyCpuShare);
  EXPECT_EQ(schedule.Due(100), Pass::kFull);
  schedule.Done(Pass::kFull, 100, 0.01);
  for (double now = 110; now < 130; now += 10) {
    EXPECT_EQ(schedule.Due(now), Pass::kChanged) << now;
    schedule.Done(Pass::kChanged, now, 0.001);
  }
  EXPECT_EQ(schedule.Due(130), Pass::kFull);
  EXPECT_EQ(schedule.passes(), 3u);
  EXPECT_DOUBLE_EQ(schedule.seconds(), 0.002) << "the start-up pass is not counted";
}

// A large host: a full pass takes half a second. The start-up pass is
// paid once; later full passes wait until they fit in 1% of the time since,
// while each report's changed pages are still read.
TEST(ClassificationScheduleTest, FullPassesWaitUntilTheyFitTheirShareOfACore) {
  ClassificationSchedule schedule(30, 0.01);
  EXPECT_EQ(schedule.Due(0), Pass::kFull) << "the first pass always runs";
  schedule.Done(Pass::kFull, 0, 0.5);
  EXPECT_EQ(schedule.Due(5), Pass::kChanged) << "new pages are classified right after start";
  schedule.Done(Pass::kChanged, 5, 0.01);
  EXPECT_EQ(schedule.Due(30), Pass::kChanged) << "a full pass due, but 0.51 s is over 1% of 30 s";
  schedule.Done(Pass::kChanged, 30, 0.01);
  EXPECT_EQ(schedule.Due(51), Pass::kChanged);
  EXPECT_EQ(schedule.Due(52), Pass::kFull) << "0.02 + 0.5 s fits in 1% of 52 s";
  schedule.Done(Pass::kFull, 52, 0.6);  // longer than the last
  EXPECT_EQ(schedule.Due(53), Pass::kNone) << "0.62 s is over 1% of 53 s: not even the changed pages";
  EXPECT_EQ(schedule.Due(62), Pass::kChanged);
  EXPECT_EQ(schedule.Due(52 + 30), Pass::kChanged) << "the next full pass fits only at 122 s";
  EXPECT_EQ(schedule.Due(122), Pass::kFull);
  // Over any stretch, the passes after the first stay within the share and one pass.
  double cost = schedule.seconds();
  for (double now = 83; now < 10000; now += 1) {
    const Pass pass = schedule.Due(now);
    schedule.Done(pass, now, pass == Pass::kFull ? 0.5 : 0.01);
    cost = schedule.seconds();
    EXPECT_LE(cost, 0.01 * now + 0.6) << now;
  }
  EXPECT_GT(cost, 0.009 * 10000) << "and the share is used";
}

TEST(ClassificationScheduleTest, ZeroIntervalNeverClassifies) {
  ClassificationSchedule schedule(0, 1);
  EXPECT_EQ(schedule.Due(0), Pass::kNone);
  EXPECT_EQ(schedule.Due(1e6), Pass::kNone);
}

}  // namespace
}  // namespace apq
