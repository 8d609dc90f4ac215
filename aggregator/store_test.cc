#include "aggregator/store.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_format.h"
#include "agent/code_objects.h"
#include "aggregator/epoch_rows.h"
#include "aggregator/fleet_epoch.h"
#include "tests/fakes/fleet_fakes.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "common/status_macros.h"

namespace apq {
namespace {

// What the aggregator does with one report, without its group commit:
// applies it to the epoch in memory, then stores it alone.
absl::StatusOr<EpochState::Outcome> ApplyAndStore(Store* store, int64_t epoch_id, EpochState* state,
                                                  const apq::v1::Report& report, int64_t received_millis) {
  absl::StatusOr<EpochState::Outcome> outcome = state->Apply(report);
  if (!outcome.ok() || *outcome != EpochState::Outcome::kApplied) return outcome;
  const EpochWrite write = WriteOf(epoch_id, *state, report, received_millis);
  const EpochWrite* batch[] = {&write};
  APQ_RETURN_IF_ERROR(store->CommitReports(batch));
  return outcome;
}

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
  for (int i = 0; i < 40; ++i) {
    TrackerSnapshot snapshot = tracker.Next();
    if (i % 7 == 0 || i == 39) {  // classified now and then, and last
      ClassifiedPages classified = tracker.Classify(snapshot, 5000 + i);
      stream.Add(snapshot, {}, {}, i, &classified);
    } else {
      stream.Add(snapshot, {}, {}, i);
    }
  }
  ASSERT_EQ(stream.unacknowledged().size(), 40u);

  {
    std::unique_ptr<Store> store = OpenStore();
    ASSERT_NE(store, nullptr);
    EpochState state;
    absl::StatusOr<Store::EpochInfo> epoch = OpenEpochState(*store, hello_, &state);
    ASSERT_TRUE(epoch.ok()) << epoch.status();
    // Reports 1..25 are stored; the acks of 21..25 never reach the agent.
    for (int i = 0; i < 25; ++i) {
      absl::StatusOr<EpochState::Outcome> outcome =
          ApplyAndStore(store.get(), epoch->epoch_id, &state, stream.unacknowledged()[i], 1000);
      ASSERT_TRUE(outcome.ok()) << outcome.status();
      ASSERT_EQ(*outcome, EpochState::Outcome::kApplied);
    }
    stream.Acknowledge(20);
  }  // the aggregator stops

  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EpochState state;
  absl::StatusOr<Store::EpochInfo> epoch = OpenEpochState(*store, hello_, &state);
  ASSERT_TRUE(epoch.ok()) << epoch.status();
  EXPECT_EQ(state.last_sequence(), 25u);
  int duplicates = 0;
  for (const apq::v1::Report& report : stream.unacknowledged()) {  // the agent resends 21..40
    absl::StatusOr<EpochState::Outcome> outcome = ApplyAndStore(store.get(), epoch->epoch_id, &state, report, 1000);
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    ASSERT_NE(*outcome, EpochState::Outcome::kNeedSnapshot);
    duplicates += *outcome == EpochState::Outcome::kDuplicate;
  }
  EXPECT_EQ(duplicates, 5);
  ExpectStateMatches(state, tracker, /*last_report_classified=*/true);

  // And what the file holds is the same.
  EpochState reloaded;
  ASSERT_TRUE(OpenEpochState(*store, hello_, &reloaded).ok());
  ExpectStateMatches(reloaded, tracker, /*last_report_classified=*/true);
  absl::StatusOr<std::vector<Store::HostRow>> hosts = store->Hosts("prod");
  ASSERT_TRUE(hosts.ok() && hosts->size() == 1);
  apq::v1::HostMemory memory;
  ASSERT_TRUE(memory.ParseFromString((*hosts)[0].memory));
  EXPECT_EQ(memory.classified_unix_millis(), 5039);
}

// Hosts and epochs as schema version 2 made them.
constexpr char kVersion2HostsAndEpochs[] = R"sql(
      CREATE TABLE hosts (host_id INTEGER PRIMARY KEY, cluster TEXT NOT NULL, name TEXT NOT NULL, UNIQUE (cluster, name));
      CREATE TABLE epochs (epoch_id INTEGER PRIMARY KEY, host_id INTEGER NOT NULL REFERENCES hosts,
        boot_id TEXT NOT NULL, agent_instance INTEGER NOT NULL, kernel_release TEXT NOT NULL, build_id BLOB NOT NULL,
        sample_bytes INTEGER NOT NULL, last_sequence INTEGER NOT NULL DEFAULT 0,
        last_report_ms INTEGER NOT NULL DEFAULT 0, losses BLOB, coverage BLOB,
        UNIQUE (host_id, boot_id, agent_instance));
)sql";

// A file written by the aggregator before classes (schema version 2) gains
// their columns at open, keeps its rows, and stores classes from then on.
TEST_F(StoreTest, AVersion2FileIsUpgradedInPlace) {
  {
    absl::StatusOr<Database> old = Database::Open(path_.string());
    ASSERT_TRUE(old.ok()) << old.status();
    ASSERT_TRUE(old->Exec(kVersion2HostsAndEpochs).ok());
    ASSERT_TRUE(old->Exec(R"sql(
      CREATE TABLE series (epoch_id INTEGER NOT NULL REFERENCES epochs, series_id INTEGER NOT NULL,
        key BLOB NOT NULL, pages_outstanding INTEGER NOT NULL, pages_allocated INTEGER NOT NULL,
        allocations INTEGER NOT NULL, PRIMARY KEY (epoch_id, series_id)) WITHOUT ROWID;
      INSERT INTO hosts VALUES (1, 'prod', 'old-host');
      INSERT INTO epochs (epoch_id, host_id, boot_id, agent_instance, kernel_release, build_id, sample_bytes)
        VALUES (1, 1, 'b', 1, '5.10.0', x'01', 0);
      INSERT INTO series VALUES (1, 1, x'', 12, 12, 1);
      CREATE TABLE paths (path_id INTEGER PRIMARY KEY, folded TEXT NOT NULL UNIQUE, leaf TEXT NOT NULL);
      INSERT INTO paths VALUES (1, 'pipe_fcntl;pipe_resize_ring;___kmalloc_large_node', '___kmalloc_large_node');
      CREATE TABLE symbol_tables (object TEXT NOT NULL, build_id BLOB NOT NULL, symbols BLOB NOT NULL,
        PRIMARY KEY (object, build_id)) WITHOUT ROWID;
      PRAGMA user_version=2;)sql")
                    .ok());
  }
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<EpochState> old_epoch = LoadEpochState(*store, 1);
  ASSERT_TRUE(old_epoch.ok()) << old_epoch.status();
  ASSERT_EQ(old_epoch->series().size(), 1u);
  EXPECT_EQ(old_epoch->series().at(1).pages_outstanding, 12);
  EXPECT_FALSE(old_epoch->series().at(1).class_pages.has_value());
  {  // paths are grouped by their function now (FunctionOf), not their last frame
    absl::StatusOr<Database> file = Database::Open(path_.string());
    ASSERT_TRUE(file.ok());
    absl::StatusOr<Statement> leaf = file->Prepare("SELECT leaf FROM paths WHERE path_id = 1");
    ASSERT_TRUE(leaf.ok());
    absl::StatusOr<bool> row = leaf->Step();
    ASSERT_TRUE(row.ok() && *row);
    EXPECT_EQ(leaf->Text(0), "pipe_resize_ring");
  }

  FakeFrames frames;
  ReportStream stream(&frames, 1 << 20);
  TrackerSnapshot snapshot = OneOwnerSnapshot(2, {5, 5, 1});
  ClassifiedPages classified;
  classified.owners[2][apq::v1::PAGE_CLASS_HIDDEN] = 5;
  classified.memory.set_classified_unix_millis(77);
  stream.Add(snapshot, {}, {}, 0, &classified);
  EpochState state;
  absl::StatusOr<Store::EpochInfo> epoch = OpenEpochState(*store, hello_, &state);
  ASSERT_TRUE(epoch.ok()) << epoch.status();
  ASSERT_TRUE(ApplyAndStore(store.get(), epoch->epoch_id, &state, stream.unacknowledged().back(), 1000).ok());
  absl::StatusOr<EpochState> reloaded = LoadEpochState(*store, epoch->epoch_id);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  ASSERT_EQ(reloaded->series().size(), 1u);
  ASSERT_TRUE(reloaded->series().begin()->second.class_pages.has_value());
  EXPECT_EQ((*reloaded->series().begin()->second.class_pages)[apq::v1::PAGE_CLASS_HIDDEN], 5u);
  ASSERT_TRUE(reloaded->memory().has_value());
  EXPECT_EQ(reloaded->memory()->classified_unix_millis(), 77);
}

// A transaction left uncommitted (an early return) rolls back; a
// committed one stays, and a second Begin inside one is an error.
TEST_F(StoreTest, TransactionsRollBackUnlessCommitted) {
  absl::StatusOr<Database> db = Database::Open(path_.string());
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (x INTEGER)").ok());
  auto count = [&] {
    absl::StatusOr<Statement> rows = db->Prepare("SELECT count(*) FROM t");
    EXPECT_TRUE(rows.ok() && rows->Step().value_or(false));
    return rows.ok() ? rows->Int(0) : -1;
  };
  {
    absl::StatusOr<Transaction> transaction = Transaction::Begin(&*db);
    ASSERT_TRUE(transaction.ok()) << transaction.status();
    ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (1)").ok());
    EXPECT_FALSE(Transaction::Begin(&*db).ok()) << "transactions do not nest";
  }
  EXPECT_EQ(count(), 0);
  {
    absl::StatusOr<Transaction> transaction = Transaction::Begin(&*db);
    ASSERT_TRUE(transaction.ok());
    ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (2)").ok());
    ASSERT_TRUE(transaction->Commit().ok());
  }
  EXPECT_EQ(count(), 1);
}

TEST_F(StoreTest, RetiredSeriesLeaveTheFile) {
  FakeFrames frames;
  ReportStream stream(&frames, 1 << 20);
  TrackerSnapshot snapshot = OneOwnerSnapshot(2, {5, 5, 1});
  stream.Add(snapshot, {}, {}, 0);
  snapshot.new_stacks.clear();
  snapshot.owners[0].counters.pages_outstanding = 0;
  for (int i = 0; i <= ReportStream::kIdleReportsToRetire; ++i) stream.Add(snapshot, {}, {}, 1 + i);
  ASSERT_EQ(stream.unacknowledged().back().retired_series_size(), 1);
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EpochState state;
  absl::StatusOr<Store::EpochInfo> epoch = OpenEpochState(*store, hello_, &state);
  ASSERT_TRUE(epoch.ok()) << epoch.status();
  for (const apq::v1::Report& report : stream.unacknowledged()) {
    ASSERT_TRUE(ApplyAndStore(store.get(), epoch->epoch_id, &state, report, 1000).ok());
  }
  EXPECT_TRUE(state.series().empty());
  absl::StatusOr<EpochState> reloaded = LoadEpochState(*store, epoch->epoch_id);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_TRUE(reloaded->series().empty()) << "the file still holds a retired series";
  EXPECT_EQ(reloaded->last_sequence(), stream.unacknowledged().back().sequence());
}

TEST_F(StoreTest, NewAgentInstanceIsANewEpoch) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  FakeFrames frames;
  ReportStream stream(&frames, 1 << 20);
  FakeTracker tracker(5);
  for (int i = 0; i < 5; ++i) stream.Add(tracker.Next(), {}, {}, i);
  EpochState first;
  absl::StatusOr<Store::EpochInfo> epoch = OpenEpochState(*store, hello_, &first);
  ASSERT_TRUE(epoch.ok());
  for (const auto& report : stream.unacknowledged())
    ASSERT_TRUE(ApplyAndStore(store.get(), epoch->epoch_id, &first, report, 1000).ok());

  hello_.mutable_epoch()->set_agent_instance(8);  // the agent restarted
  EpochState second;
  absl::StatusOr<Store::EpochInfo> next = OpenEpochState(*store, hello_, &second);
  ASSERT_TRUE(next.ok());
  EXPECT_NE(next->epoch_id, epoch->epoch_id);
  EXPECT_EQ(second.last_sequence(), 0u);
  EXPECT_TRUE(second.series().empty());
}

TEST_F(StoreTest, SymbolTablesAreKeptPerClusterAndBuild) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  apq::v1::SymbolTable table;
  table.set_object("vmlinux");
  table.set_build_id(std::string("\x01\x02\x00\x03", 4));
  apq::v1::Symbol* symbol = table.add_symbols();
  symbol->set_offset(0x1000);
  symbol->set_name("anon_pipe_write");
  ASSERT_TRUE(store->SymbolTables().ok());
  EXPECT_TRUE(store->SymbolTables()->empty());
  ASSERT_TRUE(store->PutSymbolTable("prod", table).ok());
  const SymbolTableKey key{"prod", "vmlinux", table.build_id()};
  EXPECT_EQ(*store->SymbolTables(), std::vector<SymbolTableKey>{key});
  absl::StatusOr<std::optional<apq::v1::SymbolTable>> read = store->ReadSymbolTable(key);
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->SerializeAsString(), table.SerializeAsString());
  for (const SymbolTableKey& other :
       {SymbolTableKey{"prod", "vmlinux", "other"}, SymbolTableKey{"staging", "vmlinux", table.build_id()},
        SymbolTableKey{"prod", "nf_tables", table.build_id()}}) {
    read = store->ReadSymbolTable(other);
    ASSERT_TRUE(read.ok());
    EXPECT_FALSE(read->has_value()) << other.cluster << " " << other.object;
  }
}

// A version 4 file kept one table per build for every cluster: each goes to
// the clusters whose stored epochs use that build, and to no other.
TEST_F(StoreTest, AVersion4FileGivesEachClusterTheTablesItsEpochsUse) {
  apq::v1::SymbolTable table;
  table.set_object("vmlinux");
  table.set_build_id("build-a");
  table.add_symbols()->set_name("anon_pipe_write");
  {
    absl::StatusOr<Database> old = Database::Open(path_.string());
    ASSERT_TRUE(old.ok()) << old.status();
    ASSERT_TRUE(old->Exec(kVersion2HostsAndEpochs).ok());
    ASSERT_TRUE(old->Exec(R"sql(
      ALTER TABLE epochs ADD COLUMN memory BLOB;  -- version 3
      CREATE TABLE objects (epoch_id INTEGER NOT NULL REFERENCES epochs, object_id INTEGER NOT NULL,
        name TEXT NOT NULL, build_id BLOB NOT NULL, PRIMARY KEY (epoch_id, object_id)) WITHOUT ROWID;
      CREATE TABLE symbol_tables (object TEXT NOT NULL, build_id BLOB NOT NULL, symbols BLOB NOT NULL,
        PRIMARY KEY (object, build_id)) WITHOUT ROWID;
      INSERT INTO hosts VALUES (1, 'prod', 'web-1'), (2, 'prod', 'web-2'), (3, 'staging', 'test-1'), (4, 'dev', 'd-1');
      INSERT INTO epochs (epoch_id, host_id, boot_id, agent_instance, kernel_release, build_id, sample_bytes)
        VALUES (1, 1, 'b', 1, '6.6', CAST('build-a' AS BLOB), 0), (2, 2, 'b', 1, '6.6', CAST('build-a' AS BLOB), 0),
               (3, 3, 'b', 1, '6.6', CAST('build-a' AS BLOB), 0), (4, 4, 'b', 1, '5.10', CAST('build-b' AS BLOB), 0);
      INSERT INTO objects VALUES (1, 1, 'vmlinux', CAST('build-a' AS BLOB)), (2, 1, 'vmlinux', CAST('build-a' AS BLOB)),
        (3, 1, 'vmlinux', CAST('build-a' AS BLOB)), (4, 1, 'vmlinux', CAST('build-b' AS BLOB));
      PRAGMA user_version=4;)sql")
                    .ok());
    // Build IDs are blobs, as the aggregator binds them.
    absl::StatusOr<Statement> put =
        old->Prepare("INSERT INTO symbol_tables VALUES ('vmlinux', CAST('build-a' AS BLOB), ?1)");
    ASSERT_TRUE(put.ok());
    ASSERT_TRUE(put->BindBlob(1, table.SerializeAsString()).Run().ok());
  }
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::vector<SymbolTableKey>> tables = store->SymbolTables();
  ASSERT_TRUE(tables.ok()) << tables.status();
  EXPECT_THAT(*tables, ::testing::UnorderedElementsAre(SymbolTableKey{"prod", "vmlinux", "build-a"},
                                                       SymbolTableKey{"staging", "vmlinux", "build-a"}));
  absl::StatusOr<std::optional<apq::v1::SymbolTable>> read = store->ReadSymbolTable({"staging", "vmlinux", "build-a"});
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->SerializeAsString(), table.SerializeAsString());
}

TEST_F(StoreTest, HostileInputIsRefusedNotStored) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EpochState state;
  apq::v1::Hello anonymous;
  EXPECT_EQ(OpenEpochState(*store, anonymous, &state).status().code(), absl::StatusCode::kInvalidArgument);
  // Quotes and SQL in names are data, not SQL.
  hello_.set_host("x'); DROP TABLE hosts; --");
  absl::StatusOr<Store::EpochInfo> epoch = OpenEpochState(*store, hello_, &state);
  ASSERT_TRUE(epoch.ok()) << epoch.status();
  apq::v1::Report bad;
  bad.set_sequence(1);
  bad.add_series()->set_series_id(3);  // no key
  EXPECT_FALSE(ApplyAndStore(store.get(), epoch->epoch_id, &state, bad, 1000).ok());
  EXPECT_EQ(state.last_sequence(), 0u);
  EpochState reloaded;
  ASSERT_TRUE(OpenEpochState(*store, hello_, &reloaded).ok());
  EXPECT_EQ(reloaded.last_sequence(), 0u);
}

TEST_F(StoreTest, UnwritableDatabaseIsAClearError) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open("/nonexistent/dir/apq.db");
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("/nonexistent/dir/apq.db"), std::string::npos) << store.status();
}

}  // namespace
}  // namespace apq
