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
  EXPECT_DOUBLE_EQ(schedule.seconds(), 0.012);
}

TEST(ClassificationScheduleTest, PassesWaitWhileOverTheirShareOfACore) {
  ClassificationSchedule schedule(30, 0.01);
  EXPECT_EQ(schedule.Due(0), Pass::kFull) << "the first pass always runs";
  schedule.Done(Pass::kFull, 0, 0.5);  // a large host: half a second
  EXPECT_EQ(schedule.Due(10), Pass::kNone) << "0.5 s of 10 s is over 1%";
  EXPECT_EQ(schedule.Due(49), Pass::kNone);
  EXPECT_EQ(schedule.Due(50), Pass::kFull) << "back within 1%, and the full pass is overdue";
}

TEST(ClassificationScheduleTest, ZeroIntervalNeverClassifies) {
  ClassificationSchedule schedule(0, 1);
  EXPECT_EQ(schedule.Due(0), Pass::kNone);
  EXPECT_EQ(schedule.Due(1e6), Pass::kNone);
}

}  // namespace
}  // namespace apq
