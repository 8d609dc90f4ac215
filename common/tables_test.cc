#include "common/tables.h"

#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPipeKey[] =
    "entry_SYSCALL_64_after_hwframe;do_syscall_64;__x64_sys_write;ksys_write;vfs_write;anon_pipe_write";

class TopTableTest : public ::testing::Test {
 protected:
  TopTableTest() {
    request_.set_group_by(apq::v1::GROUP_BY_STACK);
    request_.set_class_filter(apq::v1::CLASS_FILTER_HIDDEN);
    response_.set_hosts_selected(3);
    response_.set_unclassified_bytes(3 << 20);
    response_.set_unclassified_paths(7);
    apq::v1::TopEntry* pipe = response_.add_entries();
    pipe->set_key(kPipeKey);
    pipe->set_bytes_outstanding(12582912);
    pipe->set_hosts(2);
    apq::v1::ClassAmount* hidden = pipe->add_classes();
    hidden->set_page_class(apq::v1::PAGE_CLASS_HIDDEN);
    hidden->set_bytes(12582912);
    apq::v1::ClassAmount* slab = pipe->add_classes();
    slab->set_page_class(apq::v1::PAGE_CLASS_SLAB);
    slab->set_bytes(4096);
  }
  apq::v1::TopRequest request_;
  apq::v1::TopResponse response_;
};

TEST_F(TopTableTest, SizesInIecUnitsAndPathsLeafFirst) {
  const std::string table = FormatTopTable(request_, response_, "stack", TableStyle{false, 0});
  EXPECT_THAT(table, HasSubstr("12.0 MiB"));
  EXPECT_THAT(table, Not(HasSubstr("12582912")));
  EXPECT_THAT(table, HasSubstr("anon_pipe_write <- vfs_write <- ksys_write <- __x64_sys_write <- do_syscall_64 <- "
                               "entry_SYSCALL_64_after_hwframe"));
  EXPECT_THAT(table, Not(HasSubstr(";"))) << "no folded keys in a table";
  EXPECT_THAT(table, HasSubstr(" hidden "));
  // Mostly page cache, some hidden: in the hidden view the row is its hidden bytes, and says so.
  apq::v1::ClassAmount* file = response_.mutable_entries(0)->add_classes();
  file->set_page_class(apq::v1::PAGE_CLASS_FILE);
  file->set_bytes(64 << 20);
  EXPECT_THAT(FormatTopTable(request_, response_, "stack", TableStyle{false, 0}), HasSubstr(" hidden "));
  EXPECT_THAT(FormatTopTable(request_, response_, "stack", TableStyle{false, 0}), Not(HasSubstr(" file ")));
  request_.set_class_filter(apq::v1::CLASS_FILTER_ALL);
  EXPECT_THAT(FormatTopTable(request_, response_, "stack", TableStyle{false, 0}), HasSubstr(" file "));
  EXPECT_THAT(table, HasSubstr("OUTSTANDING"));
  EXPECT_THAT(table, HasSubstr("CALL PATH (leaf <- callers)"));
}

TEST_F(TopTableTest, BytesFlagShowsExactCounts) {
  const std::string table = FormatTopTable(request_, response_, "stack", TableStyle{true, 0});
  EXPECT_THAT(table, HasSubstr(" 12582912 "));
  EXPECT_THAT(table, Not(HasSubstr("MiB")));
}

TEST_F(TopTableTest, LinesAreCutToTheWidth) {
  for (size_t width : {60, 80, 100, 132}) {
    const std::string table = FormatTopTable(request_, response_, "stack", TableStyle{false, width});
    // The heading's sentences wrap as the terminal wraps them; the table's lines are cut.
    const std::string rows = table.substr(table.find("OUTSTANDING"));
    for (absl::string_view line : absl::StrSplit(rows, '\n', absl::SkipEmpty())) {
      EXPECT_LE(line.size(), width) << line;
    }
    if (width >= 80) {
      EXPECT_THAT(rows, HasSubstr("anon_pipe_write <- ")) << width;
    }
  }
  EXPECT_THAT(FormatTopTable(request_, response_, "stack", TableStyle{false, 100}), HasSubstr("<- ..."));
}

TEST_F(TopTableTest, ClassViewsSayWhatIsNotYetClassifiedInOneLine) {
  const std::string hidden = FormatTopTable(request_, response_, "stack", TableStyle{false, 0});
  EXPECT_THAT(hidden, HasSubstr("not yet classified: 3.0 MiB on 7 paths"));
  request_.set_class_filter(apq::v1::CLASS_FILTER_ALL);
  EXPECT_THAT(FormatTopTable(request_, response_, "stack", TableStyle{false, 0}), Not(HasSubstr("not yet classified")));
}

TEST_F(TopTableTest, OtherGroupsShowTheirNames) {
  request_.set_group_by(apq::v1::GROUP_BY_HOST);
  response_.mutable_entries(0)->set_key("db-17;rack4");  // a host's name is not a path, whatever it holds
  const std::string table = FormatTopTable(request_, response_, "host", TableStyle{false, 0});
  EXPECT_THAT(table, HasSubstr("db-17;rack4"));
  EXPECT_THAT(table, Not(HasSubstr("CALL PATH")));
}

TEST_F(TopTableTest, RatesOfNowAndTheProcessesUnderEachGroup) {
  apq::v1::TopEntry* pipe = response_.mutable_entries(0);
  pipe->set_alloc_bytes_per_second(9.5 * (1 << 20));
  pipe->set_free_bytes_per_second(1 << 20);
  for (int i = 0; i < 7; ++i) {
    apq::v1::PathHolder* holder = pipe->add_processes();
    holder->set_tgid(100 + i);
    holder->set_comm("writer" + std::to_string(i));
    holder->set_cgroup("/system.slice/w.service");
    holder->set_bytes((7 - i) << 20);
  }
  const std::string table = FormatTopTable(request_, response_, "stack", TableStyle{false, 0});
  EXPECT_THAT(table, HasSubstr("ALLOC/s"));
  EXPECT_THAT(table, HasSubstr("9.5 MiB"));
  EXPECT_THAT(table, HasSubstr("pid 100 writer0  /system.slice/w.service"));
  EXPECT_THAT(table, HasSubstr("pid 104 writer4"));
  EXPECT_THAT(table, Not(HasSubstr("writer5"))) << "five processes, then the rest in one line";
  EXPECT_THAT(table, HasSubstr("(2 more lines)"));
  EXPECT_THAT(table, HasSubstr("3.0 MiB")) << "the rest's bytes: 2 + 1 MiB";
  EXPECT_THAT(table, HasSubstr("HOSTS"));
  // On a narrow terminal the path keeps the room; one host needs no HOSTS column.
  EXPECT_THAT(FormatTopTable(request_, response_, "stack", TableStyle{false, 100}), Not(HasSubstr("ALLOC/s")));
  response_.set_hosts_selected(1);
  EXPECT_THAT(FormatTopTable(request_, response_, "stack", TableStyle{false, 0}), Not(HasSubstr("HOSTS")));
  // History has no interval to take rates over.
  response_.set_resolution_millis(60'000);
  response_.set_first_sample_unix_millis(1);
  response_.set_last_sample_unix_millis(1);
  EXPECT_THAT(FormatTopTable(request_, response_, "stack", TableStyle{false, 0}), Not(HasSubstr("9.5 MiB")));
}

TEST(DiffTableTest, SignedChangesInIecUnits) {
  apq::v1::DiffRequest request;
  request.set_group_by(apq::v1::GROUP_BY_STACK);
  apq::v1::DiffResponse response;
  apq::v1::DiffEntry* grown = response.add_entries();
  grown->set_key(kPipeKey);
  grown->set_before_bytes_per_host(1 << 20);
  grown->set_after_bytes_per_host(17 << 20);
  grown->set_change_per_host(16 << 20);
  apq::v1::DiffEntry* gone = response.add_entries();
  gone->set_key("a;b");
  gone->set_before_bytes_per_host(2 << 20);
  gone->set_change_per_host(-(2 << 20));
  gone->set_status("vanished");
  const std::string table = FormatDiffTable(request, response, "stack", TableStyle{false, 0});
  EXPECT_THAT(table, HasSubstr("+16.0 MiB"));
  EXPECT_THAT(table, HasSubstr("-2.0 MiB"));
  EXPECT_THAT(table, HasSubstr("anon_pipe_write <- vfs_write"));
  EXPECT_THAT(table, HasSubstr("b <- a"));
  EXPECT_THAT(table, Not(HasSubstr("16777216")));
  const std::string narrow = FormatDiffTable(request, response, "stack", TableStyle{false, 90});
  for (absl::string_view line : absl::StrSplit(narrow.substr(narrow.find("BEFORE")), '\n', absl::SkipEmpty())) {
    EXPECT_LE(line.size(), 90u) << line;
  }
}

TEST(ClustersTableTest, HostsReportingAndTheNewestReportsAge) {
  apq::v1::ClustersResponse response;
  EXPECT_THAT(FormatClustersTable(response, absl::FromUnixSeconds(1000)), HasSubstr("no cluster"));
  apq::v1::ClusterInfo* prod = response.add_clusters();
  prod->set_name("prod");
  prod->set_hosts(12);
  prod->set_hosts_reporting(11);
  prod->set_newest_report_unix_millis(1'795'000'000'000);
  const std::string table = FormatClustersTable(response, absl::FromUnixMillis(1'795'000'012'000));
  EXPECT_THAT(table, HasSubstr("CLUSTER"));
  EXPECT_THAT(table, HasSubstr("prod"));
  EXPECT_THAT(table, HasSubstr("    12         11  2026-11-18T"));
  EXPECT_THAT(table, HasSubstr("(12s ago)"));
  EXPECT_THAT(FormatClustersTable(response, absl::FromUnixMillis(1'795'000'000'400)), HasSubstr("(0s ago)"));
}

}  // namespace
}  // namespace apq
