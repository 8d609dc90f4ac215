#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <sqlite3.h>

#include "aggregator/epoch_rows.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "agent/code_objects.h"
#include "aggregator/fleet.h"
#include "aggregator/ingest_service.h"
#include "aggregator/query_metrics.h"
#include "aggregator/query_service.h"
#include "aggregator/store_sqlite.h"
#include "tests/fakes/fleet_fakes.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

constexpr int64_t kMinute = 60'000;
constexpr double kPage = 4096;

// pipe_writer: the name of the function at +0x200 (a rename between builds).
std::string Kallsyms(uint64_t base, const std::string& pipe_writer = "anon_pipe_write") {
  return absl::StrFormat("%x T _stext\n%x T ksys_write\n%x t %s\n%x T alloc_pages_noprof\n", base, base + 0x100,
                         base + 0x200, pipe_writer, base + 0x300);
}

// Fleet::ApplyThen, waiting for the outcome (after the commit).
absl::StatusOr<EpochState::Outcome> ApplyAndWait(Fleet* fleet, int64_t epoch_id, const apq::v1::Report& report) {
  absl::Notification stored;
  absl::StatusOr<EpochState::Outcome> result;
  fleet->ApplyThen(epoch_id, report, [&](absl::StatusOr<EpochState::Outcome> outcome) {
    result = std::move(outcome);
    stored.Notify();
  });
  stored.WaitForNotification();
  return result;
}

// One agent on a host of a kernel build ("build-1" unless said) whose text
// starts at `base` (KASLR), holding pages on the pipe-write path in one
// process, and optionally others on ksys_write itself.
class PipeHost {
 public:
  PipeHost(const std::string& name, uint64_t base, const std::string& build = "build-1",
           const std::string& pipe_writer = "anon_pipe_write")
      : base_(base),
        symbols_(*KernelSymbols::Parse(Kallsyms(base, pipe_writer))),
        frames_(&symbols_, [build](const std::string&) { return build; }),
        stream_(&frames_, 1 << 20),
        build_(build) {
    hello_.set_cluster("prod");
    hello_.set_host(name);
    hello_.mutable_epoch()->set_boot_id("boot-" + name);
    hello_.mutable_epoch()->set_agent_instance(1);
    hello_.mutable_kernel()->set_release("6.18.0");
    hello_.mutable_kernel()->set_build_id(build);
  }
  const std::string& build() const { return build_; }
  const apq::v1::Hello& hello() const { return hello_; }
  void MoveToCluster(const std::string& cluster) { hello_.set_cluster(cluster); }
  // The kernel's table, once a report has named the kernel as a code object.
  apq::v1::SymbolTable Symbols() { return frames_.SymbolTableOf("vmlinux").value_or(apq::v1::SymbolTable()); }

  // The next report: the process now holds `pages`; with `classified`, the
  // report carries that classification of them.
  const apq::v1::Report& Hold(int64_t pages, int64_t now, const ClassifiedPages* classified = nullptr,
                              int64_t ksys_write_pages = 0) {
    TrackerSnapshot snapshot;
    if (stream_.unacknowledged().empty() && sequence_ == 0) {
      snapshot.new_stacks[4] = {base_ + 0x310, base_ + 0x210, base_ + 0x110};  // alloc_pages <- pipe <- ksys_write
      snapshot.new_stacks[5] = {base_ + 0x310, base_ + 0x110};                 // alloc_pages <- ksys_write
    }
    TrackerSnapshot::Owner owner;
    owner.id = 2;
    owner.key.stack_id = 4;
    owner.key.tgid = 77;
    owner.counters.pages_outstanding = pages;
    owner.counters.pages_allocated = static_cast<uint64_t>(std::max<int64_t>(pages, 0));
    snapshot.owners = {owner};
    owner.id = 3;
    owner.key.stack_id = 5;
    owner.key.tgid = 78;
    owner.counters.pages_outstanding = ksys_write_pages;
    owner.counters.pages_allocated = static_cast<uint64_t>(ksys_write_pages);
    snapshot.owners.push_back(owner);
    snapshot.process_names[77] = "filler";
    snapshot.process_names[78] = "writer";
    stream_.Add(snapshot, {}, {}, now, classified);
    return stream_.unacknowledged().back();
  }
  void Acknowledge() { stream_.Acknowledge(++sequence_); }

 private:
  uint64_t base_;
  KernelSymbols symbols_;
  KallsymsFrameEncoder frames_;
  ReportStream stream_;
  std::string build_;
  apq::v1::Hello hello_;
  uint64_t sequence_ = 0;
};

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::path(::testing::TempDir()) / ("apq-fleet-" + std::to_string(getpid()) + ".db");
    Remove();
  }
  void TearDown() override { Remove(); }
  void Remove() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_.string() + suffix);
  }
  std::unique_ptr<Fleet> StartFleet(const Retention& retention = Retention()) {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_.string(), retention);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return nullptr;
    absl::StatusOr<std::unique_ptr<Fleet>> fleet =
        Fleet::Start(std::move(*store), 60'000, [this] { return now_.load(); });
    EXPECT_TRUE(fleet.ok()) << fleet.status();
    return fleet.ok() ? std::move(*fleet) : nullptr;
  }
  // Streams host's report holding `pages` into the fleet and acknowledges it.
  void Report(Fleet* fleet, int64_t epoch, PipeHost* host, int64_t pages, const ClassifiedPages* classified = nullptr,
              int64_t ksys_write_pages = 0) {
    absl::StatusOr<EpochState::Outcome> outcome =
        ApplyAndWait(fleet, epoch, host->Hold(pages, now_, classified, ksys_write_pages));
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    ASSERT_EQ(*outcome, EpochState::Outcome::kApplied);
    host->Acknowledge();
  }
  // Host's agent says hello: its epoch.
  static absl::StatusOr<int64_t> Attach(Fleet* fleet, const PipeHost& host) {
    uint64_t last = 0;
    return fleet->Attach(host.hello(), &last);
  }
  // Host's stream is asked for the kernel's table and uploads it.
  void Upload(Fleet* fleet, int64_t epoch, PipeHost* host) {
    ASSERT_EQ(fleet->NeedSymbols("vmlinux", host->build(), epoch), Fleet::SymbolNeed::kAskThisStream);
    absl::StatusOr<bool> stored = fleet->PutSymbols(epoch, host->Symbols());
    ASSERT_TRUE(stored.ok()) << stored.status();
    ASSERT_TRUE(*stored);
  }
  apq::v1::TopResponse Top(Fleet* fleet, apq::v1::TopRequest request) {
    request.set_cluster("prod");
    absl::StatusOr<apq::v1::TopResponse> top = fleet->Top(request);
    EXPECT_TRUE(top.ok()) << top.status();
    return top.ok() ? *top : apq::v1::TopResponse();
  }

  std::filesystem::path path_;
  std::atomic<int64_t> now_{1000 * kMinute};
};

// Two hosts of one kernel build, with different KASLR offsets, hold pages on
// the pipe path: one symbol table names both, and their bytes add up.
TEST_F(FleetTest, TopNowMergesHostsOfOneBuild) {
  std::unique_ptr<Fleet> fleet = StartFleet();
  ASSERT_NE(fleet, nullptr);
  PipeHost web1("web-1", 0xffffffff81000000ull), web2("web-2", 0xffffffffa2000000ull);
  absl::StatusOr<int64_t> epoch1 = Attach(fleet.get(), web1), epoch2 = Attach(fleet.get(), web2);
  ASSERT_TRUE(epoch1.ok() && epoch2.ok());
  Report(fleet.get(), *epoch1, &web1, 256);
  Report(fleet.get(), *epoch2, &web2, 512);
  Upload(fleet.get(), *epoch1, &web1);  // once per build, by one host

  apq::v1::TopResponse top = Top(fleet.get(), {});
  EXPECT_EQ(top.hosts_selected(), 2u);
  ASSERT_EQ(top.entries_size(), 1);
  EXPECT_EQ(top.entries(0).key(), "ksys_write;anon_pipe_write");
  EXPECT_EQ(top.symbols_pending_size(), 0);
  EXPECT_EQ(top.entries(0).bytes_outstanding(), (256 + 512) * kPage);
  EXPECT_EQ(top.entries(0).hosts(), 2u);
  EXPECT_EQ(top.entries(0).standard_error(), 0);
  EXPECT_EQ(top.resolution_millis(), 0);
  // What a pprof profile needs, when asked: allocations and each frame's
  // code object; history has no allocations and says so.
  EXPECT_EQ(top.entries(0).frame_objects_size(), 0);
  apq::v1::TopRequest with_allocated;
  with_allocated.set_with_allocated(true);
  top = Top(fleet.get(), with_allocated);
  ASSERT_EQ(top.entries_size(), 1);
  EXPECT_EQ(top.entries(0).bytes_allocated(), (256 + 512) * kPage);
  EXPECT_THAT(top.entries(0).frame_objects(), ::testing::ElementsAre("vmlinux", "vmlinux"));
  with_allocated.set_since_unix_millis(now_ - kMinute);
  EXPECT_EQ(fleet->Top(with_allocated).status().code(), absl::StatusCode::kInvalidArgument);
  // /metrics says the same: two hosts, each one's bytes (not classified yet: neither hidden nor visible).
  absl::StatusOr<std::vector<MetricFamily>> metrics = AggregatorMetrics(*fleet, now_);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  auto value = [&](const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels) {
    for (const MetricFamily& family : *metrics) {
      if (family.name != name) continue;
      for (const MetricSample& sample : family.samples) {
        if (sample.labels == labels) return sample.value;
      }
    }
    return -1.0;
  };
  EXPECT_EQ(value("apq_cluster_hosts", {{"cluster", "prod"}}), 2);
  EXPECT_EQ(value("apq_host_outstanding_bytes", {{"cluster", "prod"}, {"host", "web-2"}, {"class", "unclassified"}}),
            512 * kPage);
  EXPECT_EQ(value("apq_host_outstanding_bytes", {{"cluster", "prod"}, {"host", "web-2"}, {"class", "hidden"}}), -1)
      << "no page of it is known to be hidden";
  EXPECT_EQ(value("apq_cluster_outstanding_bytes", {{"cluster", "prod"}, {"class", "unclassified"}}),
            (256 + 512) * kPage);
  EXPECT_EQ(value("apq_cluster_outstanding_bytes", {{"cluster", "prod"}, {"class", "visible"}}), 0);
  EXPECT_EQ(value("apq_cluster_function_bytes", {{"cluster", "prod"}, {"function", "anon_pipe_write"}}),
            (256 + 512) * kPage);

  apq::v1::TopRequest by_host;
  by_host.set_group_by(apq::v1::GROUP_BY_HOST);
  top = Top(fleet.get(), by_host);
  ASSERT_EQ(top.entries_size(), 2);
  EXPECT_EQ(top.entries(0).key(), "web-2");
  by_host.set_frame_substring("tcp_");
  EXPECT_EQ(Top(fleet.get(), by_host).entries_size(), 0);
  apq::v1::TopRequest one_host;
  one_host.set_host("web-1");
  EXPECT_EQ(Top(fleet.get(), one_host).entries(0).bytes_outstanding(), 256 * kPage);

  // A host that stopped reporting is not "now", even with its stream open.
  now_ += 2 * kMinute;
  Report(fleet.get(), *epoch2, &web2, 512);
  top = Top(fleet.get(), {});
  EXPECT_EQ(top.hosts_selected(), 1u);
  EXPECT_EQ(top.entries(0).bytes_outstanding(), 512 * kPage);

  apq::v1::HostsRequest hosts;
  hosts.set_cluster("prod");
  absl::StatusOr<apq::v1::HostsResponse> listed = fleet->Hosts(hosts);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->hosts_size(), 2);
  EXPECT_EQ(listed->hosts(1).host(), "web-2");
  EXPECT_EQ(listed->hosts(1).last_report_unix_millis(), now_) << "the aggregator's clock, not the agent's";
}

// apq top --pid: one process's pages, on every host where that pid holds
// any; now only (history keeps no processes).
TEST_F(FleetTest, TopOfOneProcess) {
  std::unique_ptr<Fleet> fleet = StartFleet();
  ASSERT_NE(fleet, nullptr);
  PipeHost web1("web-1", 0xffffffff81000000ull);
  absl::StatusOr<int64_t> epoch = Attach(fleet.get(), web1);
  ASSERT_TRUE(epoch.ok());
  Report(fleet.get(), *epoch, &web1, 256, nullptr, 10);  // pid 77 on the pipe path, pid 78 in ksys_write
  Upload(fleet.get(), *epoch, &web1);
  apq::v1::TopRequest request;
  request.set_pid(77);
  apq::v1::TopResponse top = Top(fleet.get(), request);
  ASSERT_EQ(top.entries_size(), 1);
  EXPECT_EQ(top.entries(0).key(), "ksys_write;anon_pipe_write");
  EXPECT_EQ(top.entries(0).bytes_outstanding(), 256 * kPage);
  request.set_pid(78);
  top = Top(fleet.get(), request);
  ASSERT_EQ(top.entries_size(), 1);
  EXPECT_EQ(top.entries(0).key(), "ksys_write");
  EXPECT_EQ(top.entries(0).bytes_outstanding(), 10 * kPage);
  request.set_pid(79);
  EXPECT_EQ(Top(fleet.get(), request).entries_size(), 0);
  request.set_cluster("prod");
  request.set_since_unix_millis(now_ - kMinute);
  EXPECT_EQ(fleet->Top(request).status().code(), absl::StatusCode::kInvalidArgument);
}

// apq clusters: every cluster with a host, how many of them report now
// (within the fresh window), the newest report; only those the caller may read.
TEST_F(FleetTest, ClustersSayWhichHostsReportNow) {
  std::unique_ptr<Fleet> fleet = StartFleet();
  ASSERT_NE(fleet, nullptr);
  PipeHost web1("web-1", 0xffffffff81000000ull), web2("web-2", 0xffffffffa2000000ull),
      db("db-1", 0xffffffff82000000ull);
  db.MoveToCluster("staging");
  absl::StatusOr<int64_t> epoch1 = Attach(fleet.get(), web1), epoch2 = Attach(fleet.get(), web2),
                          epoch3 = Attach(fleet.get(), db);
  ASSERT_TRUE(epoch1.ok() && epoch2.ok() && epoch3.ok());
  Report(fleet.get(), *epoch1, &web1, 1);
  Report(fleet.get(), *epoch3, &db, 1);
  now_ += 2 * kMinute;  // past the 60 s fresh window: web-1 and db-1 no longer report
  Report(fleet.get(), *epoch2, &web2, 1);
  absl::StatusOr<apq::v1::ClustersResponse> all = fleet->Clusters([](const std::string&) { return true; });
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->clusters_size(), 2);
  EXPECT_EQ(all->clusters(0).name(), "prod");
  EXPECT_EQ(all->clusters(0).hosts(), 2u);
  EXPECT_EQ(all->clusters(0).hosts_reporting(), 1u);
  EXPECT_EQ(all->clusters(0).newest_report_unix_millis(), now_);
  EXPECT_EQ(all->clusters(1).name(), "staging");
  EXPECT_EQ(all->clusters(1).hosts(), 1u);
  EXPECT_EQ(all->clusters(1).hosts_reporting(), 0u);
  EXPECT_EQ(all->clusters(1).newest_report_unix_millis(), now_ - 2 * kMinute);
  absl::StatusOr<apq::v1::ClustersResponse> granted =
      fleet->Clusters([](const std::string& cluster) { return cluster == "staging"; });
  ASSERT_TRUE(granted.ok());
  ASSERT_EQ(granted->clusters_size(), 1);
  EXPECT_EQ(granted->clusters(0).name(), "staging");
}

// The pipe owner's pages split between hidden and anonymous, with a host's
// meminfo of MemTotal/MemFree and one visible field (MiB).
ClassifiedPages Classified(uint64_t hidden, uint64_t anon, uint64_t total_mib, uint64_t free_mib, const char* field,
                           uint64_t field_mib) {
  ClassifiedPages classified;
  classified.owners[2][apq::v1::PAGE_CLASS_HIDDEN] = hidden;
  classified.owners[2][apq::v1::PAGE_CLASS_ANON] = anon;
  for (auto [name, mib] :
       {std::pair<const char*, uint64_t>{"MemTotal", total_mib}, {"MemFree", free_mib}, {field, field_mib}}) {
    apq::v1::MeminfoField* f = classified.memory.add_meminfo();
    f->set_name(name);
    f->set_bytes(mib << 20);
  }
  classified.memory.set_held_at_start_known(true);
  classified.memory.set_held_at_start_bytes(3 << 20);
  classified.memory.set_classified_unix_millis(5);
  return classified;
}

// While a symbol table is pending, paths are named object+0xoffset and not
// cached: each group must keep its own path's code objects (the namer
// reuses one path for the next incomplete stack).
TEST_F(FleetTest, EachGroupKeepsItsOwnCodeObjectsWhileSymbolsArePending) {
  std::unique_ptr<Fleet> fleet = StartFleet();
  ASSERT_NE(fleet, nullptr);
  PipeHost web1("web-1", 0xffffffff81000000ull);
  absl::StatusOr<int64_t> epoch = Attach(fleet.get(), web1);
  ASSERT_TRUE(epoch.ok());
  Report(fleet.get(), *epoch, &web1, 256, nullptr, /*ksys_write_pages=*/16);  // two stacks, no table uploaded
  apq::v1::TopRequest with_allocated;
  with_allocated.set_with_allocated(true);
  const apq::v1::TopResponse top = Top(fleet.get(), with_allocated);
  ASSERT_EQ(top.entries_size(), 2);
  EXPECT_EQ(top.symbols_pending_size(), 1);
  for (const apq::v1::TopEntry& entry : top.entries()) {
    const std::vector<std::string> frames = absl::StrSplit(entry.key(), ';');
    EXPECT_EQ(entry.frame_objects_size(), static_cast<int>(frames.size())) << entry.key();
    for (const std::string& object : entry.frame_objects()) EXPECT_EQ(object, "vmlinux") << entry.key();
  }
}

// Class views take each series' pages now, split as last classified; a
// host not classified yet is of unknown class, in neither view but counted
// apart. apq
// explain reconciles each host's meminfo with its pages as classified, and
// sums the hosts; history refuses a class it does not keep.
TEST_F(FleetTest, ClassViewsAndExplainSumTheClassifiedHosts) {
  std::unique_ptr<Fleet> fleet = StartFleet();
  ASSERT_NE(fleet, nullptr);
  PipeHost web1("web-1", 0xffffffff81000000ull), web2("web-2", 0xffffffffa2000000ull),
      web3("web-3", 0xffffffff81000000ull);
  absl::StatusOr<int64_t> epoch1 = Attach(fleet.get(), web1), epoch2 = Attach(fleet.get(), web2),
                          epoch3 = Attach(fleet.get(), web3);
  ASSERT_TRUE(epoch1.ok() && epoch2.ok() && epoch3.ok());
  const ClassifiedPages one = Classified(256, 0, 1024, 512, "Slab", 100),
                        two = Classified(384, 128, 2048, 1024, "Active(anon)", 200);
  Report(fleet.get(), *epoch1, &web1, 256, &one);
  Report(fleet.get(), *epoch2, &web2, 512, &two);
  Report(fleet.get(), *epoch3, &web3, 10);  // never classified
  Upload(fleet.get(), *epoch1, &web1);

  apq::v1::TopRequest hidden, visible, all;
  hidden.set_class_filter(apq::v1::CLASS_FILTER_HIDDEN);
  visible.set_class_filter(apq::v1::CLASS_FILTER_VISIBLE);
  apq::v1::TopResponse top = Top(fleet.get(), hidden);
  ASSERT_EQ(top.entries_size(), 1);
  EXPECT_DOUBLE_EQ(top.entries(0).bytes_outstanding(), (256 + 384) * kPage);
  EXPECT_DOUBLE_EQ(top.unclassified_bytes(), 10 * kPage);
  EXPECT_EQ(top.unclassified_paths(), 1u);
  ASSERT_EQ(top.entries(0).classes_size(), 2);  // hidden, anon: of the hosts whose pages on it are hidden
  EXPECT_EQ(top.entries(0).classes(0).page_class(), apq::v1::PAGE_CLASS_HIDDEN);
  EXPECT_DOUBLE_EQ(top.entries(0).classes(0).bytes(), (256 + 384) * kPage);
  EXPECT_DOUBLE_EQ(top.entries(0).classes(1).bytes(), 128 * kPage);
  EXPECT_DOUBLE_EQ(Top(fleet.get(), visible).entries(0).bytes_outstanding(), 128 * kPage);
  EXPECT_DOUBLE_EQ(Top(fleet.get(), visible).unclassified_bytes(), 10 * kPage);
  EXPECT_EQ(Top(fleet.get(), all).unclassified_bytes(), 0) << "all pages are shown: none apart";
  EXPECT_EQ(Top(fleet.get(), all).entries(0).bytes_outstanding(), (256 + 512 + 10) * kPage);
  // Every view splits its entries by class: the same three classes under all.
  EXPECT_EQ(Top(fleet.get(), all).entries(0).classes_size(), 3);
  EXPECT_EQ(Top(fleet.get(), all).entries(0).classes(0).page_class(), apq::v1::PAGE_CLASS_UNKNOWN);
  EXPECT_DOUBLE_EQ(Top(fleet.get(), all).entries(0).classes(0).bytes(), 10 * kPage) << "web-3: not yet classified";

  // web-2 frees half before its next classification: the live views move
  // with it (split as classified), apq explain keeps the classified pages,
  // read with the same meminfo.
  Report(fleet.get(), *epoch2, &web2, 256);
  EXPECT_DOUBLE_EQ(Top(fleet.get(), hidden).entries(0).bytes_outstanding(), (256 + 192) * kPage);
  apq::v1::ExplainRequest request;
  request.set_cluster("prod");
  absl::StatusOr<apq::v1::ExplainResponse> explained = fleet->Explain(request);
  ASSERT_TRUE(explained.ok()) << explained.status();
  ASSERT_EQ(explained->explanations_size(), 1);
  const apq::v1::Explanation& sum = explained->explanations(0);
  EXPECT_EQ(sum.hosts(), 2u);
  EXPECT_EQ(sum.mem_total_bytes(), uint64_t{3072} << 20);
  EXPECT_EQ(sum.mem_free_bytes(), uint64_t{1536} << 20);
  EXPECT_EQ(sum.visible_bytes(), uint64_t{300} << 20);
  EXPECT_DOUBLE_EQ(sum.hidden_traced_bytes(), (256 + 384) * kPage);
  EXPECT_DOUBLE_EQ(sum.mem_free_bytes() + sum.visible_bytes() + sum.hidden_traced_bytes() + sum.hidden_untraced_bytes(),
                   sum.mem_total_bytes());
  EXPECT_DOUBLE_EQ(sum.hidden_untraced_parts(0).bytes(), 2 * (3 << 20));
  ASSERT_EQ(sum.paths_size(), 1);
  EXPECT_EQ(sum.paths(0).frames(1), "anon_pipe_write");
  ASSERT_EQ(sum.paths(0).processes_size(), 2);
  EXPECT_EQ(sum.paths(0).processes(0).host(), "web-2");
  EXPECT_DOUBLE_EQ(sum.paths(0).processes(0).bytes(), 384 * kPage);
  EXPECT_EQ(sum.paths(0).processes(1).comm(), "filler");
  EXPECT_NE(std::find(sum.notes().begin(), sum.notes().end(),
                      "1 selected hosts left out: not classified yet, or their meminfo unusable"),
            sum.notes().end());

  request.set_by_host(true);
  explained = fleet->Explain(request);
  ASSERT_TRUE(explained.ok()) << explained.status();
  ASSERT_EQ(explained->explanations_size(), 2);
  for (const apq::v1::Explanation& host : explained->explanations()) {
    EXPECT_EQ(host.hosts(), 1u);
    EXPECT_DOUBLE_EQ(host.hidden_traced_bytes(), (host.host() == "web-1" ? 256 : 384) * kPage) << host.host();
    EXPECT_TRUE(host.paths(0).processes(0).host().empty()) << "one host: holders are its own";
  }
  request.set_host("web-3");
  explained = fleet->Explain(request);
  ASSERT_TRUE(explained.ok());
  EXPECT_EQ(explained->explanations_size(), 0);

  hidden.set_at_unix_millis(now_ - kMinute);
  hidden.set_cluster("prod");
  absl::StatusOr<apq::v1::TopResponse> history = fleet->Top(hidden);
  EXPECT_EQ(history.status().code(), absl::StatusCode::kInvalidArgument);
}

// apq diff between two kernel builds running side by side (a wave half
// done: two hosts on build-1, one on Build-2, where the pipe writer was
// renamed): paths match by function names across builds, bytes compare per
// host of each cohort, and a path on one side only is new or vanished.
// Between two times: each side's samples.
TEST_F(FleetTest, DiffComparesBuildsPerHostAndTimes) {
  now_ = 1000 * 60 * kMinute;
  std::unique_ptr<Fleet> fleet = StartFleet();
  ASSERT_NE(fleet, nullptr);
  PipeHost web1("web-1", 0xffffffff81000000ull), web2("web-2", 0xffffffffa2000000ull),
      web3("web-3", 0xffffffff83000000ull, "Build-2", "pipe_write");
  absl::StatusOr<int64_t> epoch1 = Attach(fleet.get(), web1), epoch2 = Attach(fleet.get(), web2),
                          epoch3 = Attach(fleet.get(), web3);
  ASSERT_TRUE(epoch1.ok() && epoch2.ok() && epoch3.ok());
  const int64_t start = now_;
  Report(fleet.get(), *epoch1, &web1, 256, nullptr, 100);
  Report(fleet.get(), *epoch2, &web2, 512, nullptr, 100);
  Report(fleet.get(), *epoch3, &web3, 1024, nullptr, 300);
  Upload(fleet.get(), *epoch1, &web1);
  Upload(fleet.get(), *epoch3, &web3);
  ASSERT_TRUE(fleet->Sample().ok());
  now_ += kMinute;
  Report(fleet.get(), *epoch1, &web1, 768, nullptr, 100);  // web-1 grows
  Report(fleet.get(), *epoch2, &web2, 512, nullptr, 100);
  Report(fleet.get(), *epoch3, &web3, 1024, nullptr, 300);
  ASSERT_TRUE(fleet->Sample().ok());

  apq::v1::DiffRequest request;
  request.set_cluster("prod");
  request.mutable_before()->set_build_hex_prefix(absl::BytesToHexString("build-1"));
  request.mutable_after()->set_build_hex_prefix(absl::BytesToHexString("Build-2").substr(0, 4));  // a prefix
  absl::StatusOr<apq::v1::DiffResponse> diff = fleet->Diff(request);
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_EQ(diff->before_cohort_hosts(), 2u);
  EXPECT_EQ(diff->after_cohort_hosts(), 1u);
  EXPECT_EQ(diff->resolution_millis(), kMinute);
  ASSERT_EQ(diff->entries_size(), 3) << diff->DebugString();
  // Largest change per host first: the renamed writer's path, new; the old one, vanished.
  EXPECT_EQ(diff->entries(0).key(), "ksys_write;pipe_write");
  EXPECT_EQ(diff->entries(0).status(), "new");
  EXPECT_EQ(diff->entries(0).after_bytes_per_host(), 1024 * kPage);
  EXPECT_EQ(diff->entries(1).key(), "ksys_write;anon_pipe_write");
  EXPECT_EQ(diff->entries(1).status(), "vanished");
  EXPECT_EQ(diff->entries(1).before_bytes(), (768 + 512) * kPage);  // the newest sample
  EXPECT_EQ(diff->entries(1).before_bytes_per_host(), (768 + 512) / 2 * kPage);
  EXPECT_EQ(diff->entries(1).before_hosts(), 2u);
  // Matched across builds by its function names: 100 per host before, 300 after.
  EXPECT_EQ(diff->entries(2).key(), "ksys_write");
  EXPECT_EQ(diff->entries(2).status(), "");
  EXPECT_EQ(diff->entries(2).before_bytes_per_host(), 100 * kPage);
  EXPECT_EQ(diff->entries(2).after_bytes_per_host(), 300 * kPage);
  EXPECT_EQ(diff->entries(2).change_per_host(), 200 * kPage);
  EXPECT_EQ(diff->entries(2).after_hosts(), 1u);

  // By function, between the two minutes of build-1 (a point, then a range
  // whose mean covers both samples).
  request.set_group_by(apq::v1::GROUP_BY_FUNCTION);
  request.mutable_before()->set_from_unix_millis(start + 30'000);
  request.mutable_before()->set_to_unix_millis(start + 30'000);
  *request.mutable_after() = request.before();
  request.mutable_after()->set_from_unix_millis(start);
  request.mutable_after()->set_to_unix_millis(start + kMinute);
  diff = fleet->Diff(request);
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_EQ(diff->before_samples(), 1u);
  EXPECT_EQ(diff->after_samples(), 2u);
  ASSERT_GE(diff->entries_size(), 1);
  EXPECT_EQ(diff->entries(0).key(), "anon_pipe_write");
  EXPECT_EQ(diff->entries(0).before_bytes(), (256 + 512) * kPage);
  EXPECT_EQ(diff->entries(0).after_bytes(), ((256 + 512) + (768 + 512)) / 2 * kPage);

  // Per host, from the hourly host rows; history keeps no processes.
  request.set_group_by(apq::v1::GROUP_BY_HOST);
  request.mutable_before()->set_build_hex_prefix("");
  request.mutable_after()->set_build_hex_prefix("");
  diff = fleet->Diff(request);
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_EQ(diff->resolution_millis(), 60 * kMinute);
  EXPECT_EQ(diff->entries_size(), 3);
  request.set_group_by(apq::v1::GROUP_BY_PROCESS);
  EXPECT_EQ(fleet->Diff(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.set_group_by(apq::v1::GROUP_BY_STACK);
  request.mutable_before()->set_build_hex_prefix("%");
  EXPECT_EQ(fleet->Diff(request).status().code(), absl::StatusCode::kInvalidArgument);
}

// Many streams at once: their reports are committed in shared transactions,
// and every one is applied exactly once, in memory and in the file.
TEST_F(FleetTest, GroupCommitAppliesEveryReportOnce) {
  constexpr int kStreams = 8, kReports = 60;
  std::vector<FakeTracker> trackers;
  std::vector<std::unique_ptr<FakeFrames>> frames;
  std::vector<std::unique_ptr<ReportStream>> reports;
  for (int i = 0; i < kStreams; ++i) {
    trackers.emplace_back(100 + i);
    frames.push_back(std::make_unique<FakeFrames>());
    reports.push_back(std::make_unique<ReportStream>(frames.back().get(), 1 << 20));
  }
  {
    std::unique_ptr<Fleet> fleet = StartFleet();
    ASSERT_NE(fleet, nullptr);
    std::vector<std::thread> streams;
    std::atomic<int> failures{0};
    for (int i = 0; i < kStreams; ++i) {
      streams.emplace_back([&, i] {
        ReportStream& stream = *reports[i];
        apq::v1::Hello hello;
        hello.set_cluster("prod");
        hello.set_host("host-" + std::to_string(i));
        hello.mutable_epoch()->set_boot_id("boot");
        uint64_t last = 0;
        absl::StatusOr<int64_t> epoch = fleet->Attach(hello, &last);
        if (!epoch.ok()) return failures.fetch_add(1), void();
        for (int r = 0; r < kReports; ++r) {
          stream.Add(trackers[i].Next(), {}, {}, r);
          absl::StatusOr<EpochState::Outcome> outcome =
              ApplyAndWait(fleet.get(), *epoch, stream.unacknowledged().back());
          if (!outcome.ok() || *outcome != EpochState::Outcome::kApplied) failures.fetch_add(1);
          // Every third ack is lost: the resend must be a duplicate.
          if (r % 3 == 0) {
            absl::StatusOr<EpochState::Outcome> again =
                ApplyAndWait(fleet.get(), *epoch, stream.unacknowledged().back());
            if (!again.ok() || *again != EpochState::Outcome::kDuplicate) failures.fetch_add(1);
          }
          stream.Acknowledge(stream.unacknowledged().back().sequence());
        }
        fleet->Detach(*epoch);
      });
    }
    for (std::thread& t : streams) t.join();
    EXPECT_EQ(failures.load(), 0);
  }
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_.string());
  ASSERT_TRUE(store.ok());
  for (int i = 0; i < kStreams; ++i) {
    apq::v1::Hello hello;
    hello.set_cluster("prod");
    hello.set_host("host-" + std::to_string(i));
    hello.mutable_epoch()->set_boot_id("boot");
    EpochState state;
    ASSERT_TRUE(OpenEpochState(**store, hello, &state).ok());
    EXPECT_EQ(state.last_sequence(), static_cast<uint64_t>(kReports));
    ExpectStateMatches(state, trackers[i]);
  }
}

// A commit that fails (here a trigger makes the file refuse the epoch's
// update, as a full disk or an I/O error would) is not acknowledged; the
// epoch goes back to the file's state, and the resent report is applied
// once: the file ends with exactly what the agent counted.
TEST_F(FleetTest, AFailedCommitIsRefusedAndItsResendAppliedOnce) {
  FakeFrames frames;
  ReportStream stream(&frames, 1 << 20);
  FakeTracker tracker(7);
  apq::v1::Hello hello;
  hello.set_cluster("prod");
  hello.set_host("host-1");
  hello.mutable_epoch()->set_boot_id("boot");
  {
    std::unique_ptr<Fleet> fleet = StartFleet();
    ASSERT_NE(fleet, nullptr);
    uint64_t last = 0;
    absl::StatusOr<int64_t> epoch = fleet->Attach(hello, &last);
    ASSERT_TRUE(epoch.ok()) << epoch.status();
    auto send = [&] { return ApplyAndWait(fleet.get(), *epoch, stream.unacknowledged().back()); };
    for (int r = 0; r < 5; ++r) {
      stream.Add(tracker.Next(), {}, {}, r);
      ASSERT_TRUE(send().ok());
      stream.Acknowledge(stream.unacknowledged().back().sequence());
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.string().c_str(), &db), SQLITE_OK);
    ASSERT_EQ(
        sqlite3_exec(db, "CREATE TRIGGER refuse BEFORE UPDATE ON epochs BEGIN SELECT RAISE(ABORT, 'injected'); END",
                     nullptr, nullptr, nullptr),
        SQLITE_OK);
    stream.Add(tracker.Next(), {}, {}, 5);
    absl::StatusOr<EpochState::Outcome> refused = send();
    EXPECT_FALSE(refused.ok()) << "acknowledged a report the file refused";
    ASSERT_EQ(sqlite3_exec(db, "DROP TRIGGER refuse", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    absl::StatusOr<EpochState::Outcome> resent = send();
    ASSERT_TRUE(resent.ok()) << resent.status();
    EXPECT_EQ(*resent, EpochState::Outcome::kApplied) << "the epoch went back to the file's state";
    stream.Acknowledge(stream.unacknowledged().back().sequence());
    EXPECT_EQ(fleet->GetStats().commits_failed, 1u);
  }
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_.string());
  ASSERT_TRUE(store.ok());
  EpochState state;
  ASSERT_TRUE(OpenEpochState(**store, hello, &state).ok());
  EXPECT_EQ(state.last_sequence(), 6u);
  ExpectStateMatches(state, tracker);
}

// A restarted aggregator answers "now" for hosts that reported recently,
// from the file, before their agents reconnect.
TEST_F(FleetTest, RestartedFleetKnowsRecentHosts) {
  PipeHost web1("web-1", 0xffffffff81000000ull);
  {
    std::unique_ptr<Fleet> fleet = StartFleet();
    ASSERT_NE(fleet, nullptr);
    absl::StatusOr<int64_t> epoch = Attach(fleet.get(), web1);
    ASSERT_TRUE(epoch.ok());
    Report(fleet.get(), *epoch, &web1, 300);
    Upload(fleet.get(), *epoch, &web1);
  }
  std::unique_ptr<Fleet> fleet = StartFleet();
  ASSERT_NE(fleet, nullptr);
  apq::v1::TopResponse top = Top(fleet.get(), {});
  ASSERT_EQ(top.entries_size(), 1);
  EXPECT_EQ(top.entries(0).key(), "ksys_write;anon_pipe_write");
  EXPECT_EQ(top.symbols_pending_size(), 0);
  EXPECT_EQ(top.entries(0).bytes_outstanding(), 300 * kPage);
}

// History: minute samples answer --at and --since; hourly rows (cluster and
// per host) take over past the minute retention; the past outlives the
// process and cgroup detail it does not keep.
TEST_F(FleetTest, HistoryAnswersAtAndSince) {
  Retention retention;
  retention.minute_millis = 30 * kMinute;
  now_ = 1000 * 60 * kMinute;  // on an hour
  std::unique_ptr<Fleet> fleet = StartFleet(retention);
  ASSERT_NE(fleet, nullptr);
  PipeHost web1("web-1", 0xffffffff81000000ull), web2("web-2", 0xffffffffa2000000ull);
  absl::StatusOr<int64_t> epoch1 = Attach(fleet.get(), web1), epoch2 = Attach(fleet.get(), web2);
  ASSERT_TRUE(epoch1.ok() && epoch2.ok());

  apq::v1::TopRequest at;
  at.set_at_unix_millis(now_);
  EXPECT_EQ(Top(fleet.get(), at).entries_size(), 0) << "no sample yet";

  // Minute 0: 100 + 200 pages. Minute 1: 1000 + 200. Minute 2: web-1 freed all.
  const int64_t start = now_;
  const int64_t web1_pages[] = {100, 1000, 0};
  for (int minute = 0; minute < 3; ++minute) {
    now_ = start + minute * kMinute;
    Report(fleet.get(), *epoch1, &web1, web1_pages[minute]);
    Report(fleet.get(), *epoch2, &web2, 200);
    if (minute == 0) {
      Upload(fleet.get(), *epoch1, &web1);
    }
    ASSERT_TRUE(fleet->Sample().ok());
  }
  now_ = start + 3 * kMinute - 1;

  for (int minute = 0; minute < 3; ++minute) {
    at.set_at_unix_millis(start + minute * kMinute + 30'000);  // mid-minute: that minute's sample
    apq::v1::TopResponse top = Top(fleet.get(), at);
    ASSERT_EQ(top.entries_size(), 1) << minute;
    EXPECT_EQ(top.entries(0).key(), "ksys_write;anon_pipe_write");
    EXPECT_EQ(top.entries(0).bytes_outstanding(), (web1_pages[minute] + 200) * kPage) << minute;
    EXPECT_EQ(top.entries(0).hosts(), minute == 2 ? 1u : 2u);
    EXPECT_EQ(top.hosts_selected(), 2u);
    EXPECT_EQ(top.resolution_millis(), kMinute);
    EXPECT_EQ(top.first_sample_unix_millis(), start + minute * kMinute);
  }
  apq::v1::TopRequest since;
  since.set_since_unix_millis(start);
  apq::v1::TopResponse peak = Top(fleet.get(), since);
  ASSERT_EQ(peak.entries_size(), 1);
  EXPECT_EQ(peak.entries(0).bytes_outstanding(), 1200 * kPage);
  EXPECT_EQ(peak.first_sample_unix_millis(), start);
  EXPECT_EQ(peak.last_sample_unix_millis(), start + 2 * kMinute);

  // Per host: hourly rows, where "at" is the hour's newest sample.
  since.set_group_by(apq::v1::GROUP_BY_HOST);
  peak = Top(fleet.get(), since);
  ASSERT_EQ(peak.entries_size(), 2);
  EXPECT_EQ(peak.entries(0).key(), "web-1");
  EXPECT_EQ(peak.entries(0).bytes_outstanding(), 1000 * kPage);
  EXPECT_EQ(peak.resolution_millis(), 60 * kMinute);
  apq::v1::TopRequest host_at;
  host_at.set_at_unix_millis(now_);
  host_at.set_host("web-1");
  EXPECT_EQ(Top(fleet.get(), host_at).entries_size(), 0) << "web-1 holds nothing at the newest sample";
  host_at.set_host("web-2");
  ASSERT_EQ(Top(fleet.get(), host_at).entries_size(), 1);
  EXPECT_EQ(Top(fleet.get(), host_at).entries(0).bytes_outstanding(), 200 * kPage);

  apq::v1::TopRequest by_process = at;
  by_process.set_group_by(apq::v1::GROUP_BY_PROCESS);
  EXPECT_EQ(fleet
                ->Top([&] {
                  by_process.set_cluster("prod");
                  return by_process;
                }())
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  apq::v1::TopRequest backwards;
  backwards.set_cluster("prod");
  backwards.set_at_unix_millis(start);
  backwards.set_since_unix_millis(start + kMinute);
  EXPECT_EQ(fleet->Top(backwards).status().code(), absl::StatusCode::kInvalidArgument);

  // An hour later the minute samples are gone; the hourly rows answer.
  now_ = start + 90 * kMinute;
  Report(fleet.get(), *epoch2, &web2, 200);
  ASSERT_TRUE(fleet->Sample().ok());
  apq::v1::TopRequest old = since;
  old.set_group_by(apq::v1::GROUP_BY_STACK);
  old.set_at_unix_millis(start + 59 * kMinute);
  peak = Top(fleet.get(), old);
  EXPECT_EQ(peak.resolution_millis(), 60 * kMinute);
  ASSERT_EQ(peak.entries_size(), 1);
  EXPECT_EQ(peak.entries(0).bytes_outstanding(), 1200 * kPage) << "the hour's peak";
  at.set_at_unix_millis(start + kMinute);
  apq::v1::TopResponse hour = Top(fleet.get(), at);
  EXPECT_EQ(hour.resolution_millis(), 60 * kMinute);
  ASSERT_EQ(hour.entries_size(), 1);
  EXPECT_EQ(hour.entries(0).bytes_outstanding(), 200 * kPage) << "the hour's last sample";
}

// An ack means stored. A report whose commit fails is acknowledged neither
// as applied nor as a duplicate resent meanwhile (by another stream of the
// same agent, after a reconnect).
TEST_F(FleetTest, NothingIsAcknowledgedThatIsNotStored) {
  std::unique_ptr<Fleet> fleet = StartFleet();
  ASSERT_NE(fleet, nullptr);
  PipeHost web1("web-1", 0xffffffff81000000ull);
  absl::StatusOr<int64_t> epoch = Attach(fleet.get(), web1);
  ASSERT_TRUE(epoch.ok());
  Report(fleet.get(), *epoch, &web1, 10);
  // The epoch's rows vanish under the fleet, so the next commit fails.
  absl::StatusOr<Database> other = Database::Open(path_.string());
  ASSERT_TRUE(other.ok()) << other.status();
  for (const char* table : {"series", "stacks", "objects", "epochs"}) {
    ASSERT_TRUE(other->Exec(absl::StrCat("DELETE FROM ", table, " WHERE epoch_id = ", *epoch)).ok());
  }
  const apq::v1::Report second = web1.Hold(20, now_);
  absl::Notification first_done, resend_done;
  absl::StatusOr<EpochState::Outcome> first, resend;
  fleet->ApplyThen(*epoch, second, [&](absl::StatusOr<EpochState::Outcome> outcome) {
    first = outcome;
    first_done.Notify();
  });
  fleet->ApplyThen(*epoch, second, [&](absl::StatusOr<EpochState::Outcome> outcome) {
    resend = outcome;
    resend_done.Notify();
  });
  first_done.WaitForNotification();
  resend_done.WaitForNotification();
  EXPECT_FALSE(first.ok()) << "a report whose commit failed was acknowledged";
  EXPECT_TRUE(!resend.ok() || *resend != EpochState::Outcome::kDuplicate)
      << "its resend was acknowledged as a stored duplicate";
}

// Epochs that attach while a history sample prunes old ones are spared:
// pruning must not delete the row of an epoch it did not know was attached
// (its next commit would fail).
TEST_F(FleetTest, EpochsAttachingDuringASampleSurviveIt) {
  now_ = 100 * 1440 * kMinute;  // new epochs' rows, never reported yet, look silent for 100 days
  std::unique_ptr<Fleet> fleet = StartFleet();
  ASSERT_NE(fleet, nullptr);
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done) EXPECT_TRUE(fleet->Sample().ok());
  });
  int failures = 0;
  for (int i = 0; i < 300; ++i) {
    PipeHost host("host-" + std::to_string(i), 0xffffffff81000000ull);
    absl::StatusOr<int64_t> epoch = Attach(fleet.get(), host);
    ASSERT_TRUE(epoch.ok()) << epoch.status();
    absl::StatusOr<EpochState::Outcome> outcome = ApplyAndWait(fleet.get(), *epoch, host.Hold(1, now_));
    if (!outcome.ok()) ++failures;
    fleet->Detach(*epoch);
  }
  done = true;
  sampler.join();
  EXPECT_EQ(failures, 0) << "reports refused because a sample pruned their epoch";
}

// A fleet that connects at once must not send the same table from every
// host: one stream is asked, another only when it ends or is too slow.
TEST_F(FleetTest, SymbolTableIsAskedOfOneStreamAtATime) {
  std::unique_ptr<Fleet> fleet = StartFleet();
  ASSERT_NE(fleet, nullptr);
  PipeHost web1("web-1", 0xffffffff81000000ull), web2("web-2", 0xffffffffa2000000ull),
      web3("web-3", 0xffffffffb3000000ull);
  absl::StatusOr<int64_t> e1 = Attach(fleet.get(), web1), e2 = Attach(fleet.get(), web2),
                          e3 = Attach(fleet.get(), web3);
  ASSERT_TRUE(e1.ok() && e2.ok() && e3.ok());
  for (auto [epoch, host] : {std::pair{*e1, &web1}, std::pair{*e2, &web2}, std::pair{*e3, &web3}}) {
    Report(fleet.get(), epoch, host, 10);  // names vmlinux, so Symbols() has the table
  }
  using Need = Fleet::SymbolNeed;
  EXPECT_EQ(fleet->NeedSymbols("vmlinux", "build-1", *e1), Need::kAskThisStream);
  EXPECT_EQ(fleet->NeedSymbols("vmlinux", "build-1", *e2), Need::kAskedElsewhere);
  EXPECT_EQ(fleet->NeedSymbols("vmlinux", "build-1", *e1), Need::kAskedElsewhere) << "asked once";
  EXPECT_FALSE(*fleet->PutSymbols(*e2, web2.Symbols())) << "not asked: ignored";
  apq::v1::TopResponse unnamed = Top(fleet.get(), {});
  EXPECT_EQ(unnamed.entries(0).key(), "vmlinux+0x110;vmlinux+0x210;vmlinux+0x310") << "not named by it";
  ASSERT_EQ(unnamed.symbols_pending_size(), 1) << "the raw offsets are said to be pending";
  EXPECT_EQ(unnamed.symbols_pending(0).object(), "vmlinux");
  EXPECT_EQ(unnamed.symbols_pending(0).build_id(), "build-1");

  fleet->Detach(*e1);  // web-1's stream ended before uploading
  EXPECT_EQ(fleet->NeedSymbols("vmlinux", "build-1", *e2), Need::kAskThisStream);
  EXPECT_EQ(fleet->NeedSymbols("vmlinux", "build-1", *e3), Need::kAskedElsewhere);
  now_ += Fleet::kSymbolUploadMillis;  // web-2 is too slow
  EXPECT_EQ(fleet->NeedSymbols("vmlinux", "build-1", *e3), Need::kAskThisStream);
  EXPECT_TRUE(*fleet->PutSymbols(*e3, web3.Symbols()));
  EXPECT_FALSE(*fleet->PutSymbols(*e2, web2.Symbols())) << "a slow upload, overtaken: ignored";
  for (int64_t epoch : {*e1, *e2, *e3}) EXPECT_EQ(fleet->NeedSymbols("vmlinux", "build-1", epoch), Need::kStored);
  EXPECT_EQ(fleet->NeedSymbols("vmlinux", "build-2", *e1), Need::kAskThisStream) << "per build";
  apq::v1::TopResponse top = Top(fleet.get(), {});
  ASSERT_EQ(top.entries_size(), 1);
  EXPECT_EQ(top.entries(0).key(), "ksys_write;anon_pipe_write");
  EXPECT_EQ(top.symbols_pending_size(), 0);

  fleet.reset();
  fleet = StartFleet();
  ASSERT_NE(fleet, nullptr);
  EXPECT_EQ(fleet->NeedSymbols("vmlinux", "build-1", *e1), Need::kStored) << "stored tables survive a restart";
}

// Tables are kept per cluster: an agent of staging (which may report for
// staging only) that uploads wrong names for prod's build first renames only
// staging's frames; prod is asked for its own table.
TEST_F(FleetTest, ASymbolTableNamesOnlyItsUploadersCluster) {
  std::unique_ptr<Fleet> fleet = StartFleet();
  ASSERT_NE(fleet, nullptr);
  PipeHost web1("web-1", 0xffffffff81000000ull), forger("forger", 0xffffffffa2000000ull, "build-1", "forged_name");
  forger.MoveToCluster("staging");
  absl::StatusOr<int64_t> prod = Attach(fleet.get(), web1), staging = Attach(fleet.get(), forger);
  ASSERT_TRUE(prod.ok() && staging.ok());
  Report(fleet.get(), *prod, &web1, 10);
  Report(fleet.get(), *staging, &forger, 20);
  using Need = Fleet::SymbolNeed;
  ASSERT_NO_FATAL_FAILURE(Upload(fleet.get(), *staging, &forger));
  EXPECT_EQ(fleet->NeedSymbols("vmlinux", "build-1", *staging), Need::kStored);
  apq::v1::TopResponse unnamed = Top(fleet.get(), {});
  ASSERT_EQ(unnamed.entries_size(), 1);
  EXPECT_EQ(unnamed.entries(0).key(), "vmlinux+0x110;vmlinux+0x210;vmlinux+0x310")
      << "staging's table names none of prod's";
  EXPECT_EQ(unnamed.symbols_pending_size(), 1);
  ASSERT_NO_FATAL_FAILURE(Upload(fleet.get(), *prod, &web1));
  EXPECT_EQ(Top(fleet.get(), {}).entries(0).key(), "ksys_write;anon_pipe_write");
  EXPECT_EQ(fleet->GetStats().symbol_tables, 2u);
  auto staging_top = [&] {
    apq::v1::TopRequest request;
    request.set_cluster("staging");
    absl::StatusOr<apq::v1::TopResponse> top = fleet->Top(request);
    return top.ok() && top->entries_size() == 1 ? top->entries(0).key() : top.status().ToString();
  };
  EXPECT_EQ(staging_top(), "ksys_write;forged_name");

  fleet.reset();  // and from the file: still each cluster its own
  fleet = StartFleet();
  ASSERT_NE(fleet, nullptr);
  EXPECT_EQ(Top(fleet.get(), {}).entries(0).key(), "ksys_write;anon_pipe_write");
  EXPECT_EQ(staging_top(), "ksys_write;forged_name");
}

TEST_F(FleetTest, ALaterSampleOfTheSameMinuteReplacesItWhole) {
  now_ = 1000 * 60 * kMinute;
  std::unique_ptr<Fleet> fleet = StartFleet(Retention());
  ASSERT_NE(fleet, nullptr);
  PipeHost web1("web-1", 0xffffffff81000000ull);
  absl::StatusOr<int64_t> epoch = Attach(fleet.get(), web1);
  ASSERT_TRUE(epoch.ok());
  Report(fleet.get(), *epoch, &web1, 100);
  ASSERT_TRUE(fleet->Sample().ok());
  now_ += 10'000;  // same minute: the workload has freed its pages
  Report(fleet.get(), *epoch, &web1, 0);
  ASSERT_TRUE(fleet->Sample().ok());
  apq::v1::TopRequest at;
  at.set_at_unix_millis(now_);
  EXPECT_EQ(Top(fleet.get(), at).entries_size(), 0) << "the minute's newest sample holds nothing";
  apq::v1::TopRequest since;
  since.set_since_unix_millis(now_ - kMinute);
  EXPECT_EQ(Top(fleet.get(), since).entries_size(), 0) << "minute samples keep the newest, not the peak";
}

}  // namespace
}  // namespace apq
