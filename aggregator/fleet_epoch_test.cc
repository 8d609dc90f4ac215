// The agent's ReportStream against the aggregator's EpochState: whatever the
// connection does, what the aggregator holds equals what the agent counted.
#include "aggregator/fleet_epoch.h"

#include <cstdint>
#include <random>

#include "agent/report_stream.h"
#include "tests/fakes/fleet_fakes.h"
#include "gtest/gtest.h"

namespace apq {

// The series the aggregator holds under the owner's key; 0 if none.
uint32_t HeldSeriesOf(const EpochState& state, const TrackerSnapshot::Owner& owner) {
  for (const auto& [id, held] : state.series()) {
    if (held.key.stack_id() == owner.key.stack_id && held.key.tgid() == owner.key.tgid &&
        held.key.order() == owner.key.order) {
      return id;
    }
  }
  return 0;
}

// The series a report starts: the one delta that carries its key; 0 if none.
uint32_t NewSeriesOf(const apq::v1::Report& report) {
  uint32_t started = 0;
  for (const apq::v1::SeriesDelta& delta : report.series()) {
    if (delta.has_key()) started = delta.series_id();
  }
  return started;
}

void ExpectStateMatches(const EpochState& state, const FakeTracker& tracker, bool last_report_classified) {
  const std::optional<ClassifiedPages>& classified = tracker.last_classified();
  if (last_report_classified) {
    ASSERT_TRUE(classified.has_value() && state.memory().has_value());
    EXPECT_EQ(state.memory()->classified_unix_millis(), classified->memory.classified_unix_millis());
  }
  size_t series = 0;
  for (const TrackerSnapshot::Owner& owner : tracker.owners()) {
    uint32_t id = HeldSeriesOf(state, owner);
    if (id == 0) {  // retired, or never reported
      EXPECT_EQ(owner.counters.pages_outstanding, 0) << owner.id;
      continue;
    }
    ++series;
    auto held = state.series().find(id);
    ASSERT_NE(held, state.series().end()) << owner.id;
    EXPECT_EQ(held->second.pages_outstanding, owner.counters.pages_outstanding) << owner.id;
    // Counted since the series began: all of the owner's unless it was retired before.
    EXPECT_LE(held->second.pages_allocated, owner.counters.pages_allocated) << owner.id;
    EXPECT_LE(held->second.allocations, owner.counters.allocations) << owner.id;
    EXPECT_EQ(held->second.key.stack_id(), owner.key.stack_id);
    EXPECT_TRUE(state.stacks().contains(owner.key.stack_id));
    if (!last_report_classified) continue;
    auto split = classified->owners.find(owner.id);
    ASSERT_TRUE(held->second.class_pages.has_value()) << owner.id;
    EXPECT_EQ(*held->second.class_pages, split == classified->owners.end() ? ClassPageCounts{} : split->second)
        << owner.id;
  }
  EXPECT_EQ(state.series().size(), series) << "the aggregator holds a series the agent retired";
}

namespace {

// Sends every unacknowledged report, as after a reconnect; acks may be lost
// on the way back.
void Deliver(ReportStream& stream, EpochState& state, std::mt19937& rng, bool lose_acks, int* duplicates) {
  uint64_t acked = 0;
  for (const apq::v1::Report& report : stream.unacknowledged()) {
    absl::StatusOr<EpochState::Outcome> outcome = state.Apply(report);
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    if (*outcome == EpochState::Outcome::kNeedSnapshot) {
      stream.RequestSnapshot();
      break;
    }
    if (*outcome == EpochState::Outcome::kDuplicate) ++*duplicates;
    acked = report.sequence();
  }
  if (!lose_acks || rng() % 2) stream.Acknowledge(acked);
}

TEST(ReportStreamTest, AggregatorEndsWithExactlyWhatTheAgentCounted) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    FakeFrames frames;
    ReportStream stream(&frames, /*budget_bytes=*/4096);
    // What every report carries besides its series counts toward the budget too.
    apq::v1::Coverage coverage;
    for (int hook = 0; hook < 8; ++hook) coverage.add_hooked("fentry/a_hooked_allocator_path_" + std::to_string(hook));
    apq::v1::Losses losses;
    losses.set_free_unknown_pages(123'456'789);
    EpochState state;
    FakeTracker tracker(seed);
    std::mt19937 rng(seed);
    bool connected = true;
    int duplicates = 0;
    int retired = 0;
    int classifications = 0;
    for (int interval = 0; interval < 300; ++interval) {
      TrackerSnapshot snapshot = tracker.Next();
      if (rng() % 5 == 0) {
        ClassifiedPages classified = tracker.Classify(snapshot, interval * 1000);
        stream.Add(snapshot, losses, coverage, interval * 1000, &classified);
        ++classifications;
      } else {
        stream.Add(snapshot, losses, coverage, interval * 1000);
      }
      ASSERT_LE(stream.queued_bytes(), 4096u) << "seed " << seed << ", interval " << interval;
      retired += stream.unacknowledged().back().retired_series_size();
      if (rng() % 10 == 0) connected = !connected;
      if (connected) {
        ASSERT_NO_FATAL_FAILURE(Deliver(stream, state, rng, /*lose_acks=*/true, &duplicates));
      }
    }
    // Back for good: flush until everything is acknowledged, each flush classified.
    for (int round = 0; round == 0 || (round < 3 && !stream.unacknowledged().empty()); ++round) {
      TrackerSnapshot snapshot = tracker.Next();
      ClassifiedPages classified = tracker.Classify(snapshot, 1'000'000 + round);
      stream.Add(snapshot, {}, {}, 0, &classified);
      ASSERT_NO_FATAL_FAILURE(Deliver(stream, state, rng, /*lose_acks=*/false, &duplicates));
    }
    ASSERT_TRUE(stream.unacknowledged().empty()) << "seed " << seed;
    EXPECT_GT(classifications, 20) << "seed " << seed;
    ExpectStateMatches(state, tracker, /*last_report_classified=*/true);
    EXPECT_GT(duplicates, 0) << "seed " << seed << ": no resend was exercised";
    EXPECT_GT(retired, 0) << "seed " << seed << ": no series was retired";
    EXPECT_GT(stream.reports_dropped(), 0u) << "seed " << seed << ": the budget never overflowed";
    EXPECT_LE(stream.queued_bytes(), 4096u);
  }
}

TEST(ReportStreamTest, SeriesWaitForTheirStack) {
  FakeFrames frames;
  ReportStream stream(&frames, 1 << 20);
  EpochState state;
  TrackerSnapshot snapshot;
  TrackerSnapshot::Owner owner;
  owner.id = 2;
  owner.key.stack_id = 9;  // read before stack 9 was
  owner.counters.pages_outstanding = 5;
  owner.counters.pages_allocated = 5;
  snapshot.owners = {owner};
  stream.Add(snapshot, {}, {}, 0);
  snapshot.new_stacks[9] = {0xffffffff81000100ull};
  snapshot.owners[0].counters.pages_outstanding = 7;
  snapshot.owners[0].counters.pages_allocated = 7;
  stream.Add(snapshot, {}, {}, 1);
  for (const apq::v1::Report& report : stream.unacknowledged()) {
    absl::StatusOr<EpochState::Outcome> outcome = state.Apply(report);
    ASSERT_TRUE(outcome.ok()) << outcome.status();
  }
  ASSERT_EQ(state.series().size(), 1u);
  EXPECT_EQ(state.series().begin()->second.pages_outstanding, 7);
  EXPECT_EQ(state.series().begin()->second.pages_allocated, 7u);
}

// An owner the tracker retired (absent from its snapshot) is retired on the
// wire; a new owner under the same BPF id (another serial) is a new series.
TEST(ReportStreamTest, OwnersTheTrackerRetiredLeaveTheWire) {
  FakeFrames frames;
  ReportStream stream(&frames, 1 << 20);
  EpochState state;
  TrackerSnapshot snapshot = OneOwnerSnapshot(OwnerSerial(2, 0), {0, 5, 1});
  stream.Add(snapshot, {}, {}, 0);
  const uint32_t first = NewSeriesOf(stream.unacknowledged().back());
  ASSERT_NE(first, 0u);
  snapshot.new_stacks.clear();
  snapshot.owners[0].id = OwnerSerial(2, 1);  // id 2 retired and reused
  snapshot.owners[0].key.tgid = 77;
  snapshot.owners[0].counters = {3, 3, 1};
  stream.Add(snapshot, {}, {}, 1);
  const apq::v1::Report& second = stream.unacknowledged().back();
  ASSERT_EQ(second.retired_series_size(), 1);
  EXPECT_EQ(second.retired_series(0), first);
  const uint32_t reused = NewSeriesOf(second);
  EXPECT_NE(reused, 0u);
  EXPECT_NE(reused, first);
  for (const apq::v1::Report& report : stream.unacknowledged()) ASSERT_TRUE(state.Apply(report).ok());
  ASSERT_EQ(state.series().size(), 1u);
  EXPECT_EQ(state.series().at(reused).key.tgid(), 77u);
  EXPECT_EQ(state.series().at(reused).pages_outstanding, 3);
}

// A process that freed everything and went quiet is forgotten by the
// aggregator; if its owner allocates again, it is a new series.
TEST(ReportStreamTest, IdleEmptySeriesAreRetiredAndComeBackAsNew) {
  FakeFrames frames;
  ReportStream stream(&frames, 1 << 20);
  EpochState state;
  TrackerSnapshot snapshot = OneOwnerSnapshot(2, {5, 5, 1});  // outstanding, allocated, allocations
  auto deliver = [&] {
    for (const apq::v1::Report& report : stream.unacknowledged()) {
      absl::StatusOr<EpochState::Outcome> outcome = state.Apply(report);
      ASSERT_TRUE(outcome.ok()) << outcome.status();
      ASSERT_EQ(*outcome, EpochState::Outcome::kApplied);
    }
    stream.Acknowledge(stream.unacknowledged().back().sequence());
  };
  stream.Add(snapshot, {}, {}, 0);
  snapshot.new_stacks.clear();
  const uint32_t first = NewSeriesOf(stream.unacknowledged().back());
  ASSERT_NE(first, 0u);
  snapshot.owners[0].counters.pages_outstanding = 0;  // freed everything
  stream.Add(snapshot, {}, {}, 1);
  for (int idle = 1; idle < ReportStream::kIdleReportsToRetire; ++idle) stream.Add(snapshot, {}, {}, 1 + idle);
  ASSERT_NO_FATAL_FAILURE(deliver());
  EXPECT_EQ(state.series().size(), 1u) << "retired too soon";
  stream.Add(snapshot, {}, {}, 10);
  EXPECT_EQ(stream.unacknowledged().back().retired_series_size(), 1);
  ASSERT_NO_FATAL_FAILURE(deliver());
  EXPECT_TRUE(state.series().empty());
  stream.Add(snapshot, {}, {}, 11);
  EXPECT_EQ(stream.unacknowledged().back().series_size(), 0) << "a retired owner that stays quiet is not sent";

  snapshot.owners[0].counters = {4, 9, 2};  // allocates again
  stream.Add(snapshot, {}, {}, 12);
  const uint32_t second = NewSeriesOf(stream.unacknowledged().back());
  ASSERT_NO_FATAL_FAILURE(deliver());
  EXPECT_NE(second, 0u);
  EXPECT_NE(second, first);
  ASSERT_EQ(state.series().size(), 1u);
  EXPECT_EQ(state.series().at(second).pages_outstanding, 4);
  EXPECT_EQ(state.series().at(second).pages_allocated, 4u) << "counted from retirement on";
  EXPECT_EQ(state.series().at(second).key.stack_id(), 9u);
  stream.RequestSnapshot();  // a snapshot carries it whole, and nothing retired
  stream.Add(snapshot, {}, {}, 13);
  ASSERT_NO_FATAL_FAILURE(deliver());
  ASSERT_EQ(state.series().size(), 1u);
  EXPECT_EQ(state.series().at(second).pages_outstanding, 4);
}

TEST(ReportStreamTest, UnchangedSeriesAreNotResent) {
  FakeFrames frames;
  ReportStream stream(&frames, 1 << 20);
  FakeTracker tracker(7);
  TrackerSnapshot snapshot;
  for (int i = 0; i < 10; ++i) {
    snapshot = tracker.Next();
    stream.Add(snapshot, {}, {}, i);
  }
  int series_sent = 0;
  for (const apq::v1::Report& report : stream.unacknowledged()) series_sent += report.series_size();
  EXPECT_GT(series_sent, 0);
  stream.Acknowledge(10);
  snapshot.new_stacks.clear();  // nothing new, no counter moved
  stream.Add(snapshot, {}, {}, 10);
  ASSERT_EQ(stream.unacknowledged().size(), 1u);
  EXPECT_EQ(stream.unacknowledged()[0].series_size(), 0);
  EXPECT_EQ(stream.unacknowledged()[0].stacks_size(), 0);
  EXPECT_EQ(stream.unacknowledged()[0].sequence(), 11u);
}

apq::v1::Report DeltaReport(uint64_t sequence, uint32_t series, int64_t outstanding, bool with_key) {
  apq::v1::Report report;
  report.set_sequence(sequence);
  apq::v1::SeriesDelta* delta = report.add_series();
  delta->set_series_id(series);
  delta->set_pages_outstanding(outstanding);
  if (with_key) delta->mutable_key()->set_stack_id(0xffffffffu);  // unsampled: needs no stack
  return report;
}

// Hostile input: random reports, and random bytes parsed as reports, never
// crash the epoch, and a refused report changes nothing.
TEST(EpochStateTest, RandomReportsNeverCrashOrHalfApply) {
  std::mt19937_64 rng(99);
  EpochState state;
  int applied = 0, refused = 0;
  auto small = [&](uint64_t n) { return static_cast<uint32_t>(rng() % n); };
  for (int i = 0; i < 20000; ++i) {
    apq::v1::Report report;
    if (i % 4 == 0) {
      std::string bytes(small(200), '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
      if (!report.ParseFromString(bytes)) continue;
    } else {
      report.set_sequence(small(4) == 0 ? rng() : state.last_sequence() + small(3));
      report.set_full_snapshot(small(10) == 0);
      for (uint32_t o = small(3); o > 0; --o) {
        apq::v1::CodeObject* object = report.add_objects();
        object->set_id(small(4));
        object->set_name(std::string(small(300), 'm'));
      }
      for (uint32_t s = small(3); s > 0; --s) {
        apq::v1::StackDefinition* stack = report.add_stacks();
        stack->set_id(small(2) ? small(8) : static_cast<uint32_t>(rng()));
        for (uint32_t f = small(150); f > 0; --f) {
          apq::v1::Frame* frame = stack->add_frames();
          frame->set_object_id(small(5));
          frame->set_offset(rng());
        }
      }
      for (uint32_t d = small(4); d > 0; --d) {
        apq::v1::SeriesDelta* delta = report.add_series();
        delta->set_series_id(small(10));
        if (small(2)) {
          delta->mutable_key()->set_stack_id(small(3) ? small(10) : 0xffffffffu);
          delta->mutable_key()->set_comm(std::string(small(80), 'c'));
        }
        delta->set_pages_outstanding(static_cast<int64_t>(rng()));
        delta->set_pages_allocated(rng());
      }
    }
    uint64_t before_sequence = state.last_sequence();
    size_t before_series = state.series().size();
    absl::StatusOr<EpochState::Outcome> outcome = state.Apply(report);
    if (outcome.ok() && *outcome == EpochState::Outcome::kApplied) {
      ++applied;
    } else {
      refused += !outcome.ok();
      EXPECT_EQ(state.last_sequence(), before_sequence);
      EXPECT_EQ(state.series().size(), before_series);
    }
  }
  // Both sides of the rule were exercised.
  EXPECT_GT(applied, 200);
  EXPECT_GT(refused, 500);
}

TEST(EpochStateTest, DuplicatesAndGaps) {
  EpochState state;
  ASSERT_EQ(*state.Apply(DeltaReport(1, 5, 10, true)), EpochState::Outcome::kApplied);
  EXPECT_EQ(*state.Apply(DeltaReport(1, 5, 10, true)), EpochState::Outcome::kDuplicate);
  EXPECT_EQ(*state.Apply(DeltaReport(3, 5, 1, false)), EpochState::Outcome::kNeedSnapshot);
  EXPECT_EQ(state.series().at(5).pages_outstanding, 10);
  apq::v1::Report snapshot = DeltaReport(4, 5, 7, true);
  snapshot.set_full_snapshot(true);
  EXPECT_EQ(*state.Apply(snapshot), EpochState::Outcome::kApplied);
  EXPECT_EQ(state.series().at(5).pages_outstanding, 7);
  EXPECT_EQ(state.last_sequence(), 4u);
}

// Rates are of the last interval only: a series the last report did not
// change has none, a full snapshot carries no interval, and a clock that
// went back gives none rather than a negative or huge rate.
TEST(EpochStateTest, RatesCoverTheLastIntervalOnly) {
  EpochState state;
  auto report = [](uint64_t sequence, int64_t millis, std::vector<std::tuple<uint32_t, int64_t, uint64_t>> series) {
    apq::v1::Report r;
    r.set_sequence(sequence);
    r.set_unix_millis(millis);
    for (const auto& [id, outstanding, allocated] : series) {
      apq::v1::SeriesDelta* delta = r.add_series();
      delta->set_series_id(id);
      delta->mutable_key()->set_stack_id(0xffffffffu);
      delta->set_pages_outstanding(outstanding);
      delta->set_pages_allocated(allocated);
    }
    return r;
  };
  ASSERT_TRUE(state.Apply(report(1, 10'000, {{1, 8, 8}, {2, 4, 4}})).ok());
  EXPECT_EQ(state.interval_seconds(), 0) << "a first report has no interval";
  EXPECT_EQ(state.PagesInLastInterval(state.series().at(1)), std::make_pair(uint64_t{0}, uint64_t{0}));
  // 2 s later: series 1 allocated 6 and freed 10 (outstanding 8 -> 4); series 2 unchanged.
  ASSERT_TRUE(state.Apply(report(2, 12'000, {{1, -4, 6}})).ok());
  EXPECT_EQ(state.interval_seconds(), 2);
  EXPECT_EQ(state.PagesInLastInterval(state.series().at(1)), std::make_pair(uint64_t{6}, uint64_t{10}));
  EXPECT_EQ(state.PagesInLastInterval(state.series().at(2)), std::make_pair(uint64_t{0}, uint64_t{0}));
  // The next report does not change series 1: its rate is gone.
  ASSERT_TRUE(state.Apply(report(3, 13'000, {{2, 1, 1}})).ok());
  EXPECT_EQ(state.PagesInLastInterval(state.series().at(1)), std::make_pair(uint64_t{0}, uint64_t{0}));
  EXPECT_EQ(state.PagesInLastInterval(state.series().at(2)), std::make_pair(uint64_t{1}, uint64_t{0}));
  // The agent's clock went back.
  ASSERT_TRUE(state.Apply(report(4, 5'000, {{2, 1, 1}})).ok());
  EXPECT_EQ(state.interval_seconds(), 0);
  EXPECT_EQ(state.PagesInLastInterval(state.series().at(2)), std::make_pair(uint64_t{0}, uint64_t{0}));
  // Hostile times: a difference past int64 counts as no interval.
  ASSERT_TRUE(state.Apply(report(5, INT64_MIN, {{2, 1, 1}})).ok());
  ASSERT_TRUE(state.Apply(report(6, INT64_MAX, {{2, 1, 1}})).ok());
  EXPECT_EQ(state.interval_seconds(), 0);
  apq::v1::Report snapshot = report(7, 6'000, {{2, 9, 9}});
  snapshot.set_full_snapshot(true);
  ASSERT_TRUE(state.Apply(snapshot).ok());
  EXPECT_EQ(state.interval_seconds(), 0) << "absolute values carry no interval";
}

TEST(EpochStateTest, MalformedReportsChangeNothing) {
  EpochState state;
  ASSERT_EQ(*state.Apply(DeltaReport(1, 5, 10, true)), EpochState::Outcome::kApplied);
  // A series never introduced, a stack never defined, a series twice,
  // a frame into an unknown object, sequence 0.
  EXPECT_FALSE(state.Apply(DeltaReport(2, 6, 1, false)).ok());
  apq::v1::Report unknown_stack = DeltaReport(2, 6, 1, true);
  unknown_stack.mutable_series(0)->mutable_key()->set_stack_id(42);
  EXPECT_FALSE(state.Apply(unknown_stack).ok());
  apq::v1::Report twice = DeltaReport(2, 5, 1, false);
  *twice.add_series() = twice.series(0);
  EXPECT_FALSE(state.Apply(twice).ok());
  apq::v1::Report bad_frame = DeltaReport(2, 5, 1, false);
  apq::v1::StackDefinition* stack = bad_frame.add_stacks();
  stack->set_id(1);
  stack->add_frames()->set_object_id(9);
  EXPECT_FALSE(state.Apply(bad_frame).ok());
  EXPECT_FALSE(state.Apply(DeltaReport(0, 5, 1, false)).ok());
  apq::v1::Report long_comm = DeltaReport(2, 6, 1, true);
  long_comm.mutable_series(0)->mutable_key()->set_comm(std::string(100000, 'x'));
  EXPECT_FALSE(state.Apply(long_comm).ok());
  EXPECT_EQ(state.series().size(), 1u);
  EXPECT_EQ(state.series().at(5).pages_outstanding, 10);
  EXPECT_EQ(state.last_sequence(), 1u);
}

// An epoch's tables are bounded: a stream that keeps adding code objects
// (likewise stacks and series) is refused once over the limit, in one
// report or across many.
TEST(EpochStateTest, EpochsCannotGrowWithoutBound) {
  EpochState state;
  constexpr int kLimit = 1 << 13;
  apq::v1::Report first;
  first.set_sequence(1);
  for (int i = 0; i < kLimit - 1; ++i) first.add_objects()->set_id(static_cast<uint32_t>(i));
  ASSERT_EQ(*state.Apply(first), EpochState::Outcome::kApplied);
  apq::v1::Report two_more;
  two_more.set_sequence(2);
  two_more.add_objects()->set_id(kLimit);
  two_more.add_objects()->set_id(kLimit + 1);
  absl::StatusOr<EpochState::Outcome> refused = state.Apply(two_more);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("over the aggregator's limit"), std::string::npos) << refused.status();
  EXPECT_EQ(state.objects().size(), static_cast<size_t>(kLimit - 1));
  apq::v1::Report redefined;  // ids it holds already do not count again
  redefined.set_sequence(2);
  redefined.add_objects()->set_id(0);
  redefined.add_objects()->set_id(kLimit);
  EXPECT_EQ(*state.Apply(redefined), EpochState::Outcome::kApplied);
  EXPECT_EQ(state.objects().size(), static_cast<size_t>(kLimit));
  apq::v1::Report snapshot = first;  // a snapshot replaces what is held
  snapshot.set_sequence(3);
  snapshot.set_full_snapshot(true);
  EXPECT_EQ(*state.Apply(snapshot), EpochState::Outcome::kApplied);
}

// Classes and host memory from the wire are checked like the rest: a page
// class the aggregator does not know, a class twice in one split, or a
// flood of meminfo fields refuse the report and change nothing.
TEST(EpochStateTest, HostileClassesAndMemoryAreRefused) {
  FakeFrames frames;
  ReportStream stream(&frames, 1 << 20);
  stream.Add(OneOwnerSnapshot(2, {5, 5, 1}), {}, {}, 0);
  const apq::v1::Report good = stream.unacknowledged().back();
  for (int variant = 0; variant < 3; ++variant) {
    apq::v1::Report bad = good;
    apq::v1::PagesByClass* split = bad.mutable_series(0)->mutable_pages_by_class();
    if (variant == 0) split->add_classes()->set_page_class(static_cast<apq::v1::PageClass>(99));
    if (variant == 1) {
      split->add_classes()->set_page_class(apq::v1::PAGE_CLASS_HIDDEN);
      split->add_classes()->set_page_class(apq::v1::PAGE_CLASS_HIDDEN);
    }
    if (variant == 2) {
      for (int i = 0; i < 1000; ++i) bad.mutable_memory()->add_meminfo()->set_name("Field");
    }
    EpochState state;
    absl::StatusOr<EpochState::Outcome> outcome = state.Apply(bad);
    EXPECT_EQ(outcome.status().code(), absl::StatusCode::kInvalidArgument) << variant;
    EXPECT_TRUE(state.series().empty());
    EXPECT_FALSE(state.memory().has_value());
  }
  EpochState state;
  ASSERT_TRUE(state.Apply(good).ok());
}

}  // namespace
}  // namespace apq
