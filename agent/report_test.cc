#include "agent/report.h"

#include <map>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "common/losses.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace apq {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKallsyms[] =
    "ffffffff81000000 T entry_SYSCALL_64\n"
    "ffffffff81001000 T ksys_write\n"
    "ffffffff81002000 T anon_pipe_write\n"
    "ffffffff81003000 T alloc_pages_noprof\n"
    "ffffffff81004000 T trace_call_bpf\n"
    "ffffffff81005000 T tcp_sendmsg\n";

TrackerSnapshot::Owner MakeOwner(uint32_t id, uint32_t stack, uint32_t tgid, uint32_t order, int64_t outstanding,
                                 uint64_t allocated) {
  TrackerSnapshot::Owner owner;
  owner.id = id;
  owner.key.stack_id = stack;
  owner.key.tgid = tgid;
  owner.key.order = order;
  owner.counters.pages_outstanding = outstanding;
  owner.counters.pages_allocated = allocated;
  owner.counters.allocations = allocated;
  return owner;
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    symbols_ = *KernelSymbols::Parse(kKallsyms);
    snapshot_.monotonic_seconds = 20;
    // Two stacks through the pipe that differ only inside the allocator.
    snapshot_.new_stacks[1] = {0xffffffff81004010, 0xffffffff81003010, 0xffffffff81002010, 0xffffffff81001010,
                               0xffffffff81000010};
    snapshot_.new_stacks[2] = {0xffffffff81003020, 0xffffffff81002010, 0xffffffff81001010, 0xffffffff81000010};
    snapshot_.new_stacks[3] = {0xffffffff81005010, 0xffffffff81001010, 0xffffffff81000010};
    snapshot_.owners = {MakeOwner(2, 1, 100, 0, 200, 300), MakeOwner(3, 2, 101, 0, 56, 56),
                        MakeOwner(4, 3, 100, 1, 10, 10), MakeOwner(5, APQ_STACK_LOST, 7, 0, 1, 1)};
    snapshot_.process_names = {{100, "filler"}, {101, "other"}};
    snapshot_.counters[APQ_CTR_FREE_UNKNOWN_PAGES] = 9;
  }

  KernelSymbols symbols_;
  TrackerSnapshot snapshot_;
};

TEST_F(ReportTest, ExactModeMergesStacksByPathAndSplitsByProcess) {
  ReportBuilder builder(&symbols_, nullptr, *SamplingPlan::ForSampleBytes(0), 10);
  TrackerSnapshot before = snapshot_;
  before.monotonic_seconds = 18;
  before.owners = {MakeOwner(2, 1, 100, 0, 100, 100)};
  Report report = builder.Build(snapshot_, &before, 0);
  ASSERT_EQ(report.paths.size(), 3u);
  const PathStats& pipe = report.paths[0];
  EXPECT_THAT(pipe.frames, ElementsAre("entry_SYSCALL_64", "ksys_write", "anon_pipe_write"));
  EXPECT_EQ(pipe.bytes_outstanding, 256.0 * 4096);
  EXPECT_EQ(pipe.standard_error(), 0);
  ASSERT_EQ(pipe.processes.size(), 2u);
  EXPECT_EQ(pipe.processes[0].tgid, 100u);
  EXPECT_EQ(pipe.processes[0].comm, "filler");
  EXPECT_EQ(pipe.processes[0].bytes, 200.0 * 4096);
  // (300-100) + 56 pages allocated in 2 s.
  EXPECT_DOUBLE_EQ(pipe.alloc_bytes_per_second, 256.0 * 4096 / 2);
  EXPECT_EQ(report.paths[1].bytes_outstanding, 10.0 * 4096);
  EXPECT_THAT(report.paths[2].frames, ElementsAre("[stack unknown]"));
  EXPECT_EQ(report.tracked_bytes_outstanding, (200u + 56 + 10 + 1) * 4096);
  EXPECT_EQ(report.seconds_tracing, 10);
  EXPECT_EQ(report.losses.free_unknown_pages(), 9u);
}

TEST_F(ReportTest, StacksDeliveredOnceStayNamed) {
  ReportBuilder builder(&symbols_, nullptr, *SamplingPlan::ForSampleBytes(0), 10);
  builder.Learn(snapshot_);
  TrackerSnapshot later = snapshot_;
  later.new_stacks.clear();
  later.owners.push_back(MakeOwner(9, 77, 100, 0, 3, 3));  // stack 77 not read yet
  Report report = builder.Build(later, nullptr, 0);
  EXPECT_THAT(report.paths[0].frames, ElementsAre("entry_SYSCALL_64", "ksys_write", "anon_pipe_write"));
  bool not_yet_read = false;
  for (const PathStats& p : report.paths) not_yet_read |= p.frames == std::vector<std::string>{"[stack not yet read]"};
  EXPECT_TRUE(not_yet_read);
}

TEST_F(ReportTest, FoldedIsRootFirstWithBytes) {
  ReportBuilder builder(&symbols_, nullptr, *SamplingPlan::ForSampleBytes(0), 10);
  Report report = builder.Build(snapshot_, nullptr, 2);
  EXPECT_EQ(FormatFolded(report),
            "entry_SYSCALL_64;ksys_write;anon_pipe_write 1048576\n"
            "entry_SYSCALL_64;ksys_write;tcp_sendmsg 40960\n");
  EXPECT_EQ(report.total_paths, 3u);
}

TEST_F(ReportTest, SampledModeWeightsPagesAndReportsError) {
  SamplingPlan plan = *SamplingPlan::ForSampleBytes(512 * 1024);
  snapshot_.owners.push_back(MakeOwner(6, APQ_STACK_UNSAMPLED, 100, 0, 1000, 1000));
  ReportBuilder builder(&symbols_, nullptr, plan, 10);
  Report report = builder.Build(snapshot_, nullptr, 0);
  EXPECT_EQ(report.paths[0].bytes_outstanding, plan.EstimateBytes(0, 256));
  EXPECT_DOUBLE_EQ(report.paths[0].variance, plan.EstimateVariance(0, 256));
  EXPECT_GT(report.paths[0].standard_error(), 0);
  EXPECT_EQ(report.unsampled_bytes_outstanding, 1000u * 4096);
  EXPECT_EQ(report.tracked_bytes_outstanding, (200u + 56 + 10 + 1 + 1000) * 4096);
  EXPECT_THAT(report.mode(), HasSubstr("sampled"));
  EXPECT_THAT(FormatTable(report, TableStyle{}), HasSubstr("±"));
}

TEST_F(ReportTest, TableShowsIecSizesAndLeafFirstPathsCutToTheWidth) {
  ReportBuilder builder(&symbols_, nullptr, *SamplingPlan::ForSampleBytes(0), 10);
  const Report report = builder.Build(snapshot_, nullptr, 0);
  const std::string whole = FormatTable(report, TableStyle{false, 0});
  EXPECT_THAT(whole, HasSubstr("1.0 MiB"));  // 256 pages of the pipe path
  EXPECT_THAT(whole, Not(HasSubstr("1048576")));
  EXPECT_THAT(whole, HasSubstr("anon_pipe_write <- ksys_write <- entry_SYSCALL_64"));
  EXPECT_THAT(whole, HasSubstr("pid 100 filler"));
  EXPECT_THAT(FormatTable(report, TableStyle{true, 0}), HasSubstr(" 1048576 "));
  const std::string narrow = FormatTable(report, TableStyle{false, 100});
  EXPECT_THAT(narrow, HasSubstr("anon_pipe_write <- ksys_write <- ..."));
  const size_t rows = narrow.find("OUTSTANDING"), end = narrow.find("events:");
  for (absl::string_view line : absl::StrSplit(narrow.substr(rows, end - rows), '\n', absl::SkipEmpty())) {
    EXPECT_LE(line.size(), 100u) << line;
  }
}

TEST_F(ReportTest, JsonCarriesLossesAndPaths) {
  ReportBuilder builder(&symbols_, nullptr, *SamplingPlan::ForSampleBytes(0), 10);
  Report report = builder.Build(snapshot_, nullptr, 0);
  report.blind_paths = {"bulk allocator: no hook"};
  nlohmann::json j = nlohmann::json::parse(FormatJson(report));
  EXPECT_EQ(j["mode"], "exact");
  EXPECT_EQ(j["losses"]["free_unknown_pages"], 9);
  EXPECT_EQ(j["paths"][0]["frames"].back(), "anon_pipe_write");
  EXPECT_EQ(j["paths"][0]["processes"][0]["comm"], "filler");
  EXPECT_EQ(j["paths"][0]["processes"][0]["cgroup"], "cgroup 0");
  EXPECT_EQ(j["not_visible"][0], "bulk allocator: no hook");
  EXPECT_THAT(FormatLossSummary(report), HasSubstr("free-unknown-pages=9"));
}

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

// Classified snapshots split each path and process by class; the filter
// keeps the selected classes and drops paths left empty. Owner 2's pages
// are on the pipe path (unflagged: hidden, but 20 of them are slab), owner
// 4's on tcp_sendmsg (anon, by their flags), owner 5's stack is lost
// (unflagged: of no known class, in neither view but counted apart).
TEST_F(ReportTest, ClassFilterKeepsTheSelectedClasses) {
  TrackerSnapshot::PageClassification classes;
  classes.owners[2].unflagged = 180;
  classes.owners[2].flagged[apq::v1::PAGE_CLASS_SLAB] = 20;
  classes.owners[3].unflagged = 56;
  classes.owners[4].flagged[apq::v1::PAGE_CLASS_ANON] = 10;
  classes.owners[5].unflagged = 1;
  snapshot_.page_classes = classes;
  ReportBuilder hidden(&symbols_, nullptr, *SamplingPlan::ForSampleBytes(0), 10);
  hidden.set_class_filter(apq::v1::CLASS_FILTER_HIDDEN);
  Report report = hidden.Build(snapshot_, nullptr, 0);
  ASSERT_EQ(report.paths.size(), 1u) << "the lost stack's pages are of no known class: not hidden";
  EXPECT_EQ(report.paths[0].bytes_outstanding, (180 + 56) * 4096.0);
  EXPECT_EQ(report.paths[0].class_bytes[apq::v1::PAGE_CLASS_SLAB], 20 * 4096.0);  // all classes kept
  ASSERT_EQ(report.paths[0].processes.size(), 2u);
  EXPECT_EQ(report.paths[0].processes[0].bytes, 180 * 4096.0);
  EXPECT_EQ(report.unclassified_bytes, 4096.0);
  EXPECT_EQ(report.unclassified_paths, 1u);
  EXPECT_THAT(FormatTable(report, TableStyle{}), HasSubstr("not yet classified: 4.0 KiB on 1 paths"));
  EXPECT_EQ(report.class_bytes[apq::v1::PAGE_CLASS_HIDDEN], (180 + 56) * 4096.0);
  EXPECT_EQ(report.class_bytes[apq::v1::PAGE_CLASS_UNKNOWN], 4096.0);
  EXPECT_EQ(report.class_bytes[apq::v1::PAGE_CLASS_ANON], 10 * 4096.0);

  ReportBuilder visible(&symbols_, nullptr, *SamplingPlan::ForSampleBytes(0), 10);
  visible.set_class_filter(apq::v1::CLASS_FILTER_VISIBLE);
  report = visible.Build(snapshot_, nullptr, 0);
  ASSERT_EQ(report.paths.size(), 2u);
  EXPECT_EQ(report.paths[0].bytes_outstanding, 20 * 4096.0);  // the pipe path's slab pages
  EXPECT_EQ(report.paths[1].bytes_outstanding, 10 * 4096.0);  // tcp_sendmsg's anon pages
  auto json = nlohmann::json::parse(FormatJson(report));
  EXPECT_EQ(json["class"], "visible");
  EXPECT_EQ(json["paths"][0]["classes"]["hidden"], (180 + 56) * 4096.0);
  EXPECT_EQ(json["paths"][0]["processes"][0]["classes"]["slab"], 20 * 4096.0);
  EXPECT_EQ(json["unclassified_bytes"], 4096.0);

  // Without a classification every page is shown, whatever the filter.
  snapshot_.page_classes.reset();
  ReportBuilder unclassified(&symbols_, nullptr, *SamplingPlan::ForSampleBytes(0), 10);
  unclassified.set_class_filter(apq::v1::CLASS_FILTER_HIDDEN);
  report = unclassified.Build(snapshot_, nullptr, 0);
  EXPECT_FALSE(report.class_filter.has_value());
  EXPECT_EQ(report.paths.size(), 3u);
}

}  // namespace
}  // namespace apq
