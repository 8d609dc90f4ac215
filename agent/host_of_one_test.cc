// apq-agent --local's pipeline on fake snapshots: the streaming agent's
// reports, the aggregator's state and queries, and the local renderers.
#include "agent/host_of_one.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "agent/code_objects.h"
#include "agent/local_report.h"
#include "agent/report.h"
#include "common/proto_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace apq {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKallsyms[] =
    "ffffffff80ff0000 T _stext\n"
    "ffffffff81000000 T entry_SYSCALL_64\n"
    "ffffffff81001000 T ksys_write\n"
    "ffffffff81002000 T anon_pipe_write\n"
    "ffffffff81003000 T alloc_pages_noprof\n"
    "ffffffff81004000 T trace_call_bpf\n"
    "ffffffff81005000 T tcp_sendmsg\n";
constexpr char kPipePath[] = "entry_SYSCALL_64;ksys_write;anon_pipe_write";
constexpr char kTcpPath[] = "entry_SYSCALL_64;ksys_write;tcp_sendmsg";

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

class HostOfOneTest : public ::testing::Test {
 protected:
  HostOfOneTest()
      : symbols_(*KernelSymbols::Parse(kKallsyms)),
        frames_(&symbols_, [](const std::string&) { return std::string("\x12\x34"); }) {
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

  HostOfOne Host(uint64_t sample_bytes) {
    return HostOfOne(
        &frames_, [this](const std::string& object) { return frames_.SymbolTableOf(object); }, "h1", sample_bytes,
        nullptr);
  }
  // A first snapshot 2 s before snapshot_: owner 2 had 100 pages.
  TrackerSnapshot Before() const {
    TrackerSnapshot before = snapshot_;
    before.owners = {MakeOwner(2, 1, 100, 0, 100, 100)};
    before.new_stacks = {{1, snapshot_.new_stacks.at(1)}};
    return before;
  }
  TrackerSnapshot Now() const {
    TrackerSnapshot now = snapshot_;
    now.new_stacks.erase(1);
    return now;
  }
  static apq::v1::TopRequest Request(ClassFilter filter) {
    apq::v1::TopRequest request;
    request.set_class_filter(filter);
    request.set_with_processes(true);
    return request;
  }
  // Owner 2's pages are on the pipe path (unflagged: hidden, but 20 of
  // them are slab), owner 4's on tcp_sendmsg (anon, by their flags), owner
  // 5's stack is lost (unflagged: of no known class).
  static ClassifiedPages Classified() {
    ClassifiedPages classified;
    classified.owners[2][apq::v1::PAGE_CLASS_HIDDEN] = 180;
    classified.owners[2][apq::v1::PAGE_CLASS_SLAB] = 20;
    classified.owners[3][apq::v1::PAGE_CLASS_HIDDEN] = 56;
    classified.owners[4][apq::v1::PAGE_CLASS_ANON] = 10;
    classified.owners[5][apq::v1::PAGE_CLASS_UNKNOWN] = 1;
    classified.memory.set_classified_unix_millis(20'000);
    return classified;
  }

  KernelSymbols symbols_;
  KallsymsFrameEncoder frames_;
  TrackerSnapshot snapshot_;
};

TEST_F(HostOfOneTest, ExactModeMergesStacksByPathAndSplitsByProcess) {
  HostOfOne host = Host(0);
  ASSERT_TRUE(host.Add(Before(), {}, {}, 18'000, nullptr).ok());
  ASSERT_TRUE(host.Add(Now(), {}, {}, 20'000, nullptr).ok());
  absl::StatusOr<apq::v1::TopResponse> top = host.Top(Request(apq::v1::CLASS_FILTER_ALL));
  ASSERT_TRUE(top.ok()) << top.status();
  ASSERT_EQ(top->entries_size(), 3) << top->DebugString();
  const apq::v1::TopEntry& pipe = top->entries(0);
  EXPECT_EQ(pipe.key(), kPipePath);
  EXPECT_EQ(pipe.bytes_outstanding(), 256.0 * 4096);
  EXPECT_EQ(pipe.standard_error(), 0);
  ASSERT_EQ(pipe.processes_size(), 2);
  EXPECT_EQ(pipe.processes(0).tgid(), 100u);
  EXPECT_EQ(pipe.processes(0).comm(), "filler");
  EXPECT_EQ(pipe.processes(0).host(), "") << "one host: not named";
  EXPECT_EQ(pipe.processes(0).bytes(), 200.0 * 4096);
  // (300-100) + 56 pages allocated in 2 s; owner 2 freed 100 (100 + 200 allocated, 200 outstanding).
  EXPECT_DOUBLE_EQ(pipe.alloc_bytes_per_second(), 256.0 * 4096 / 2);
  EXPECT_DOUBLE_EQ(pipe.free_bytes_per_second(), 100.0 * 4096 / 2);
  EXPECT_EQ(top->entries(1).key(), kTcpPath);
  EXPECT_EQ(top->entries(1).bytes_outstanding(), 10.0 * 4096) << "order 1: counted in pages";
  EXPECT_EQ(top->entries(2).key(), "[stack unknown]");
  EXPECT_EQ(top->unclassified_bytes(), 0);

  // A second later tcp_sendmsg's owner has freed all its pages: the path
  // holds nothing, and still shows what it freed (all pages); a class view
  // lists only what holds its pages.
  TrackerSnapshot later = Now();
  later.new_stacks.clear();
  later.owners[2].counters.pages_outstanding = 0;
  ASSERT_TRUE(host.Add(later, {}, {}, 21'000, nullptr).ok());
  top = host.Top(Request(apq::v1::CLASS_FILTER_ALL));
  ASSERT_TRUE(top.ok()) << top.status();
  const auto tcp = std::find_if(top->entries().begin(), top->entries().end(),
                                [](const apq::v1::TopEntry& entry) { return entry.key() == kTcpPath; });
  ASSERT_NE(tcp, top->entries().end()) << top->DebugString();
  EXPECT_EQ(tcp->bytes_outstanding(), 0);
  EXPECT_DOUBLE_EQ(tcp->free_bytes_per_second(), 10.0 * 4096);
  top = host.Top(Request(apq::v1::CLASS_FILTER_HIDDEN));
  ASSERT_TRUE(top.ok()) << top.status();
  for (const apq::v1::TopEntry& entry : top->entries()) EXPECT_NE(entry.key(), kTcpPath);
}

TEST_F(HostOfOneTest, SampledModeWeightsPagesAndReportsError) {
  const SamplingPlan plan = *SamplingPlan::ForSampleBytes(512 * 1024);
  snapshot_.owners.push_back(MakeOwner(6, APQ_STACK_UNSAMPLED, 100, 0, 1000, 1000));
  HostOfOne host = Host(plan.sample_bytes());
  ASSERT_TRUE(host.Add(snapshot_, {}, {}, 20'000, nullptr).ok());
  absl::StatusOr<apq::v1::TopResponse> top = host.Top(Request(apq::v1::CLASS_FILTER_ALL));
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(top->entries(0).bytes_outstanding(), plan.EstimateBytes(0, 256));
  EXPECT_DOUBLE_EQ(top->entries(0).standard_error(), std::sqrt(plan.EstimateVariance(0, 256)));
  const apq::v1::LocalReport report = LocalReportOf(snapshot_, plan, 10);
  EXPECT_EQ(report.unsampled_bytes_outstanding(), 1000u * 4096);
  EXPECT_EQ(report.tracked_bytes_outstanding(), (200u + 56 + 10 + 1 + 1000) * 4096);
  EXPECT_EQ(report.mode(), "sampled");
}

// The class views keep the selected classes, with every class of each entry
// and process listed; the lost stack's page is in neither view but counted
// in one line.
TEST_F(HostOfOneTest, ClassViewsKeepTheSelectedClasses) {
  HostOfOne host = Host(0);
  const ClassifiedPages classified = Classified();
  ASSERT_TRUE(host.Add(snapshot_, {}, {}, 20'000, &classified).ok());
  absl::StatusOr<apq::v1::TopResponse> hidden = host.Top(Request(apq::v1::CLASS_FILTER_HIDDEN));
  ASSERT_TRUE(hidden.ok()) << hidden.status();
  ASSERT_EQ(hidden->entries_size(), 1);
  EXPECT_EQ(hidden->entries(0).bytes_outstanding(), (180 + 56) * 4096.0);
  ASSERT_EQ(hidden->entries(0).processes_size(), 2);
  EXPECT_EQ(hidden->entries(0).processes(0).bytes(), 180 * 4096.0);
  EXPECT_EQ(hidden->unclassified_bytes(), 4096.0);
  EXPECT_EQ(hidden->unclassified_paths(), 1u);
  absl::StatusOr<apq::v1::TopResponse> visible = host.Top(Request(apq::v1::CLASS_FILTER_VISIBLE));
  ASSERT_TRUE(visible.ok()) << visible.status();
  ASSERT_EQ(visible->entries_size(), 2);
  EXPECT_EQ(visible->entries(0).bytes_outstanding(), 20 * 4096.0);  // the pipe path's slab pages
  EXPECT_EQ(visible->entries(1).bytes_outstanding(), 10 * 4096.0);  // tcp_sendmsg's anon pages
  const apq::v1::PathHolder& filler = visible->entries(0).processes(0);
  ASSERT_EQ(filler.classes_size(), 2) << filler.DebugString();
  EXPECT_EQ(filler.classes(0).page_class(), apq::v1::PAGE_CLASS_HIDDEN);
  EXPECT_EQ(filler.classes(1).page_class(), apq::v1::PAGE_CLASS_SLAB);
  EXPECT_EQ(filler.classes(1).bytes(), 20 * 4096.0);
}

// What a person reads: the header, IEC sizes, leaf-first paths with their
// processes, the losses; and the json in the proto's names only.
TEST_F(HostOfOneTest, TableAndJsonOfTheLocalReport) {
  HostOfOne host = Host(0);
  ASSERT_TRUE(host.Add(snapshot_, {}, {}, 20'000, nullptr).ok());
  apq::v1::LocalReport report = LocalReportOf(snapshot_, *SamplingPlan::ForSampleBytes(0), 10);
  report.mutable_coverage()->add_not_visible("bulk allocator: no hook");
  *report.mutable_request() = Request(apq::v1::CLASS_FILTER_ALL);
  *report.mutable_top() = *host.Top(report.request());
  const std::string table = FormatLocalTable(report, TableStyle{false, 0});
  EXPECT_THAT(table, HasSubstr("apq local  mode=exact  tracing 10.0 s"));
  EXPECT_THAT(table, HasSubstr("1.0 MiB"));  // 256 pages of the pipe path
  EXPECT_THAT(table, Not(HasSubstr("1048576")));
  EXPECT_THAT(table, HasSubstr("anon_pipe_write <- ksys_write <- entry_SYSCALL_64"));
  EXPECT_THAT(table, HasSubstr("pid 100 filler"));
  EXPECT_THAT(table, HasSubstr("free-unknown-pages=9"));
  EXPECT_THAT(table, HasSubstr("not visible: bulk allocator: no hook"));
  EXPECT_THAT(FormatLocalTable(report, TableStyle{true, 0}), HasSubstr(" 1048576 "));

  absl::StatusOr<std::string> json = ProtoJson(report);
  ASSERT_TRUE(json.ok());
  const nlohmann::json j = nlohmann::json::parse(*json);
  EXPECT_EQ(j["mode"], "exact");
  EXPECT_EQ(j["losses"]["free_unknown_pages"], "9") << "64-bit integers are strings in proto JSON";
  EXPECT_EQ(j["top"]["entries"][0]["key"], kPipePath);
  EXPECT_EQ(j["top"]["entries"][0]["processes"][0]["comm"], "filler");
  std::function<void(const nlohmann::json&)> snake_case = [&](const nlohmann::json& value) {
    if (value.is_array()) {
      for (const auto& item : value) snake_case(item);
    } else if (value.is_object()) {
      for (const auto& [key, item] : value.items()) {
        for (char c : key) EXPECT_FALSE(std::isupper(static_cast<unsigned char>(c))) << key;
        snake_case(item);
      }
    }
  };
  snake_case(j);
}

}  // namespace
}  // namespace apq
