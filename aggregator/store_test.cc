#include "aggregator/store.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_format.h"
#include "agent/code_objects.h"
#include "aggregator/testing_fakes.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::path(::testing::TempDir()) / ("apq-store-" + std::to_string(getpid()) + ".db");
    Remove();
    hello_.set_cluster("prod");
    hello_.set_host("web-1");
    hello_.mutable_epoch()->set_boot_id("boot-a");
    hello_.mutable_epoch()->set_agent_instance(7);
    hello_.mutable_kernel()->set_release("6.18.0");
    hello_.mutable_kernel()->set_build_id("build");
  }
  void TearDown() override { Remove(); }
  void Remove() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_.string() + suffix);
  }
  std::unique_ptr<Store> OpenStore() {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_.string());
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::filesystem::path path_;
  apq::v1::Hello hello_;
};

TEST_F(StoreTest, RestartMidStreamLosesAndDuplicatesNothing) {
  FakeFrames frames;
  ReportStream stream(&frames, 1 << 20);
  FakeTracker tracker(3);
  for (int i = 0; i < 40; ++i) stream.Add(tracker.Next(), {}, {}, i);
  ASSERT_EQ(stream.unacknowledged().size(), 40u);

  {
    std::unique_ptr<Store> store = OpenStore();
    ASSERT_NE(store, nullptr);
    EpochState state;
    absl::StatusOr<int64_t> epoch = store->OpenEpoch(hello_, &state);
    ASSERT_TRUE(epoch.ok()) << epoch.status();
    // Reports 1..25 are stored; the acks of 21..25 never reach the agent.
    for (int i = 0; i < 25; ++i) {
      absl::StatusOr<EpochState::Outcome> outcome = store->ApplyReport(*epoch, &state, stream.unacknowledged()[i]);
      ASSERT_TRUE(outcome.ok()) << outcome.status();
      ASSERT_EQ(*outcome, EpochState::Outcome::kApplied);
    }
    stream.Acknowledge(20);
  }  // the aggregator stops

  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EpochState state;
  absl::StatusOr<int64_t> epoch = store->OpenEpoch(hello_, &state);
  ASSERT_TRUE(epoch.ok()) << epoch.status();
  EXPECT_EQ(state.last_sequence(), 25u);
  int duplicates = 0;
  for (const apq::v1::Report& report : stream.unacknowledged()) {  // the agent resends 21..40
    absl::StatusOr<EpochState::Outcome> outcome = store->ApplyReport(*epoch, &state, report);
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    ASSERT_NE(*outcome, EpochState::Outcome::kNeedSnapshot);
    duplicates += *outcome == EpochState::Outcome::kDuplicate;
  }
  EXPECT_EQ(duplicates, 5);
  ExpectStateMatches(state, tracker);

  // And what the file holds is the same.
  EpochState reloaded;
  ASSERT_TRUE(store->OpenEpoch(hello_, &reloaded).ok());
  ExpectStateMatches(reloaded, tracker);
}

TEST_F(StoreTest, NewAgentInstanceIsANewEpoch) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  FakeFrames frames;
  ReportStream stream(&frames, 1 << 20);
  FakeTracker tracker(5);
  for (int i = 0; i < 5; ++i) stream.Add(tracker.Next(), {}, {}, i);
  EpochState first;
  absl::StatusOr<int64_t> epoch = store->OpenEpoch(hello_, &first);
  ASSERT_TRUE(epoch.ok());
  for (const auto& report : stream.unacknowledged()) ASSERT_TRUE(store->ApplyReport(*epoch, &first, report).ok());

  hello_.mutable_epoch()->set_agent_instance(8);  // the agent restarted
  EpochState second;
  absl::StatusOr<int64_t> next = store->OpenEpoch(hello_, &second);
  ASSERT_TRUE(next.ok());
  EXPECT_NE(*next, *epoch);
  EXPECT_EQ(second.last_sequence(), 0u);
  EXPECT_TRUE(second.series().empty());
}

TEST_F(StoreTest, SymbolTablesAreKeptPerBuild) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  apq::v1::SymbolTable table;
  table.set_object("vmlinux");
  table.set_build_id(std::string("\x01\x02\x00\x03", 4));
  apq::v1::Symbol* symbol = table.add_symbols();
  symbol->set_offset(0x1000);
  symbol->set_name("anon_pipe_write");
  EXPECT_FALSE(*store->HasSymbolTable("vmlinux", table.build_id()));
  ASSERT_TRUE(store->PutSymbolTable(table).ok());
  EXPECT_TRUE(*store->HasSymbolTable("vmlinux", table.build_id()));
  EXPECT_FALSE(*store->HasSymbolTable("vmlinux", "other"));
}

TEST_F(StoreTest, HostileInputIsRefusedNotStored) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EpochState state;
  apq::v1::Hello anonymous;
  EXPECT_EQ(store->OpenEpoch(anonymous, &state).status().code(), absl::StatusCode::kInvalidArgument);
  // Quotes and SQL in names are data, not SQL.
  hello_.set_host("x'); DROP TABLE hosts; --");
  absl::StatusOr<int64_t> epoch = store->OpenEpoch(hello_, &state);
  ASSERT_TRUE(epoch.ok()) << epoch.status();
  apq::v1::Report bad;
  bad.set_sequence(1);
  bad.add_series()->set_series_id(3);  // no key
  EXPECT_FALSE(store->ApplyReport(*epoch, &state, bad).ok());
  EXPECT_EQ(state.last_sequence(), 0u);
  EpochState reloaded;
  ASSERT_TRUE(store->OpenEpoch(hello_, &reloaded).ok());
  EXPECT_EQ(reloaded.last_sequence(), 0u);
}

// Two hosts of one kernel build, with different KASLR offsets, hold pages on
// the pipe path: one symbol table names both, and their bytes add up.
TEST_F(StoreTest, TopMergesHostsOfOneBuild) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto kallsyms = [](uint64_t base) {
    return absl::StrFormat("%x T _stext\n%x T ksys_write\n%x t anon_pipe_write\n%x T alloc_pages_noprof\n",
                           base, base + 0x100, base + 0x200, base + 0x300);
  };
  int64_t now = 1'000'000;
  for (auto [name, base, pages] : {std::tuple<const char*, uint64_t, int64_t>{"web-1", 0xffffffff81000000ull, 256},
                                   {"web-2", 0xffffffffa2000000ull, 512}}) {
    KernelSymbols symbols = *KernelSymbols::Parse(kallsyms(base));
    KallsymsFrameEncoder frames(&symbols, [](const std::string&) { return std::string("build-1"); });
    ReportStream stream(&frames, 1 << 20);
    TrackerSnapshot snapshot;
    snapshot.new_stacks[4] = {base + 0x310, base + 0x210, base + 0x110};  // alloc_pages <- pipe <- ksys_write
    TrackerSnapshot::Owner owner;
    owner.id = 2;
    owner.key.stack_id = 4;
    owner.key.tgid = 77;
    owner.counters.pages_outstanding = pages;
    owner.counters.pages_allocated = static_cast<uint64_t>(pages);
    snapshot.owners = {owner};
    snapshot.process_names[77] = "filler";
    stream.Add(snapshot, {}, {}, now);
    if (std::string(name) == "web-1") {  // the table is uploaded once per build, by one host
      ASSERT_TRUE(store->PutSymbolTable(*frames.SymbolTableOf("vmlinux")).ok());
    }

    hello_.set_host(name);
    hello_.mutable_kernel()->set_build_id("build-1");
    hello_.set_sample_bytes(0);
    EpochState state;
    absl::StatusOr<int64_t> epoch = store->OpenEpoch(hello_, &state);
    ASSERT_TRUE(epoch.ok()) << epoch.status();
    ASSERT_TRUE(store->ApplyReport(*epoch, &state, stream.unacknowledged().front()).ok());
  }

  apq::v1::TopRequest request;
  request.set_cluster("prod");
  absl::StatusOr<apq::v1::TopResponse> top = store->Top(request, now, 60'000);
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(top->hosts_selected(), 2u);
  ASSERT_EQ(top->entries_size(), 1);
  EXPECT_EQ(top->entries(0).key(), "ksys_write;anon_pipe_write");
  EXPECT_EQ(top->entries(0).bytes_outstanding(), (256 + 512) * 4096.0);
  EXPECT_EQ(top->entries(0).hosts(), 2u);
  EXPECT_EQ(top->entries(0).standard_error(), 0);

  request.set_group_by(apq::v1::GROUP_BY_HOST);
  top = store->Top(request, now, 60'000);
  ASSERT_TRUE(top.ok());
  ASSERT_EQ(top->entries_size(), 2);
  EXPECT_EQ(top->entries(0).key(), "web-2");
  request.set_frame_substring("tcp_");
  EXPECT_EQ(store->Top(request, now, 60'000)->entries_size(), 0);
  request.clear_frame_substring();
  // Stale hosts are not "now".
  EXPECT_EQ(store->Top(request, now + 120'000, 60'000)->hosts_selected(), 0u);
  request.set_at_unix_millis(5);
  EXPECT_EQ(store->Top(request, now, 60'000).status().code(), absl::StatusCode::kUnimplemented);

  // Epochs being streamed are read from memory, not the file.
  request.clear_at_unix_millis();
  request.set_group_by(apq::v1::GROUP_BY_STACK);
  int live_calls = 0;
  absl::StatusOr<apq::v1::TopResponse> from_memory =
      store->Top(request, now, 60'000, [&](int64_t) -> const EpochState* {
        ++live_calls;
        return nullptr;  // none live: both loaded from the file
      });
  ASSERT_TRUE(from_memory.ok());
  EXPECT_EQ(live_calls, 2);
  EXPECT_EQ(from_memory->entries(0).bytes_outstanding(), (256 + 512) * 4096.0);
  EpochState empty;
  from_memory = store->Top(request, now, 60'000, [&](int64_t) { return &empty; });
  ASSERT_TRUE(from_memory.ok());
  EXPECT_EQ(from_memory->entries_size(), 0) << "live state was not used";

  apq::v1::HostsRequest hosts;
  hosts.set_cluster("prod");
  absl::StatusOr<apq::v1::HostsResponse> listed = store->Hosts(hosts);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->hosts_size(), 2);
  EXPECT_EQ(listed->hosts(0).host(), "web-1");
  EXPECT_EQ(listed->hosts(0).last_report_unix_millis(), now);
}

TEST_F(StoreTest, UnwritableDatabaseIsAClearError) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open("/nonexistent/dir/apq.db");
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("/nonexistent/dir/apq.db"), std::string::npos) << store.status();
}

}  // namespace
}  // namespace apq
