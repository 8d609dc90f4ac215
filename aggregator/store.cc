#include "aggregator/store.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/stack_paths.h"

namespace apq {
namespace {

constexpr int kSchemaVersion = 3;
constexpr int64_t kMinuteMillis = 60'000;
constexpr int64_t kHourMillis = 3'600'000;
// An epoch that has not reported for this long, and is not its host's
// newest, is deleted with its series (its history stays in the rollups).
constexpr int64_t kOldEpochMillis = 86'400'000;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS hosts (
  host_id INTEGER PRIMARY KEY,
  cluster TEXT NOT NULL,
  name TEXT NOT NULL,
  UNIQUE (cluster, name));
CREATE TABLE IF NOT EXISTS epochs (
  epoch_id INTEGER PRIMARY KEY,
  host_id INTEGER NOT NULL REFERENCES hosts,
  boot_id TEXT NOT NULL,
  agent_instance INTEGER NOT NULL,
  kernel_release TEXT NOT NULL,
  build_id BLOB NOT NULL,
  sample_bytes INTEGER NOT NULL,
  last_sequence INTEGER NOT NULL DEFAULT 0,
  last_report_ms INTEGER NOT NULL DEFAULT 0,
  losses BLOB,
  coverage BLOB,
  memory BLOB,  -- HostMemory of the last classification; NULL: none yet
  UNIQUE (host_id, boot_id, agent_instance));
CREATE TABLE IF NOT EXISTS objects (
  epoch_id INTEGER NOT NULL REFERENCES epochs,
  object_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  build_id BLOB NOT NULL,
  PRIMARY KEY (epoch_id, object_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stacks (
  epoch_id INTEGER NOT NULL REFERENCES epochs,
  stack_id INTEGER NOT NULL,
  definition BLOB NOT NULL,
  PRIMARY KEY (epoch_id, stack_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
  epoch_id INTEGER NOT NULL REFERENCES epochs,
  series_id INTEGER NOT NULL,
  key BLOB NOT NULL,
  pages_outstanding INTEGER NOT NULL,
  pages_allocated INTEGER NOT NULL,
  allocations INTEGER NOT NULL,
  class_pages BLOB,  -- PagesByClass as last classified; NULL: not yet
  PRIMARY KEY (epoch_id, series_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS symbol_tables (
  object TEXT NOT NULL,
  build_id BLOB NOT NULL,
  symbols BLOB NOT NULL,
  PRIMARY KEY (object, build_id)) WITHOUT ROWID;
-- History. Paths are keyed by function names, which survive kernel
-- upgrades (addresses and offsets do not): what apq diff compares.
CREATE TABLE IF NOT EXISTS paths (
  path_id INTEGER PRIMARY KEY,
  folded TEXT NOT NULL UNIQUE,
  leaf TEXT NOT NULL);  -- the path's function (FunctionOf): --by function
-- Which minutes were sampled, and how many hosts each cluster had then.
CREATE TABLE IF NOT EXISTS cluster_samples (
  minute INTEGER NOT NULL,
  cluster TEXT NOT NULL,
  hosts INTEGER NOT NULL,
  PRIMARY KEY (minute, cluster)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cluster_minutes (
  minute INTEGER NOT NULL,
  cluster TEXT NOT NULL,
  build_id BLOB NOT NULL,
  path_id INTEGER NOT NULL,
  bytes REAL NOT NULL,
  variance REAL NOT NULL,
  hosts INTEGER NOT NULL,
  PRIMARY KEY (minute, cluster, build_id, path_id)) WITHOUT ROWID;
-- bytes/variance/hosts: at the hour's last sample; peak_*: at the path's
-- largest sample of the hour.
CREATE TABLE IF NOT EXISTS cluster_hours (
  hour INTEGER NOT NULL,
  cluster TEXT NOT NULL,
  build_id BLOB NOT NULL,
  path_id INTEGER NOT NULL,
  bytes REAL NOT NULL,
  variance REAL NOT NULL,
  hosts INTEGER NOT NULL,
  peak_bytes REAL NOT NULL,
  peak_variance REAL NOT NULL,
  peak_hosts INTEGER NOT NULL,
  PRIMARY KEY (hour, cluster, build_id, path_id)) WITHOUT ROWID;
-- Per host, its largest paths of the hour (the rest under '[other paths]').
CREATE TABLE IF NOT EXISTS host_hours (
  hour INTEGER NOT NULL,
  host_id INTEGER NOT NULL,
  path_id INTEGER NOT NULL,
  build_id BLOB NOT NULL,
  bytes REAL NOT NULL,
  variance REAL NOT NULL,
  peak_bytes REAL NOT NULL,
  peak_variance REAL NOT NULL,
  PRIMARY KEY (hour, host_id, path_id)) WITHOUT ROWID;
-- host= and --by host read one host's hours: without this, every host's.
CREATE INDEX IF NOT EXISTS host_hours_by_host ON host_hours (host_id, hour);
)sql";

// Brings a file of an older version up to this one: each step runs once, in
// order, on files older than its version (a new file gets kSchema whole).
constexpr struct {
  int version;
  const char* sql;
} kUpgrades[] = {
    {3, "ALTER TABLE series ADD COLUMN class_pages BLOB; ALTER TABLE epochs ADD COLUMN memory BLOB;"},
};

int64_t FloorDiv(int64_t value, int64_t unit) { return value >= 0 ? value / unit : -((-value + unit - 1) / unit); }

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path, const Retention& retention) {
  absl::StatusOr<Database> writer = Database::Open(path);
  if (!writer.ok()) return writer.status();
  absl::StatusOr<Database> reader = Database::Open(path);
  if (!reader.ok()) return reader.status();
  if (absl::Status status = reader->Exec("PRAGMA query_only=1"); !status.ok()) return status;
  std::unique_ptr<Store> store(new Store(std::move(*writer), std::move(*reader), retention));
  if (absl::Status status = store->CreateSchema(); !status.ok()) return status;
  return store;
}

absl::Status Store::CreateSchema() {
  absl::StatusOr<Statement> version = db_.Prepare("PRAGMA user_version");
  if (!version.ok()) return version.status();
  absl::StatusOr<bool> row = version->Step();
  if (!row.ok()) return row.status();
  int64_t found = *row ? version->Int(0) : 0;
  if (found > kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("database schema version ", found, " is newer than this aggregator's ", kSchemaVersion));
  }
  absl::StatusOr<Transaction> transaction = Transaction::Begin(&db_);
  if (!transaction.ok()) return transaction.status();
  if (absl::Status status = db_.Exec(kSchema); !status.ok()) return status;
  for (const auto& upgrade : kUpgrades) {
    if (found == 0 || found >= upgrade.version) continue;
    if (absl::Status status = db_.Exec(upgrade.sql); !status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("upgrading the database to version ", upgrade.version, ": ", status.message()));
    }
  }
  // Version 3 groups paths by their function (FunctionOf), not their last frame.
  if (found != 0 && found < 3) {
    if (absl::Status status = RenamePathFunctions(); !status.ok()) return status;
  }
  if (absl::Status status = db_.Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion)); !status.ok()) {
    return status;
  }
  return transaction->Commit();
}

absl::Status Store::RenamePathFunctions() {
  absl::StatusOr<Statement> paths = db_.Prepare("SELECT path_id, folded FROM paths");
  if (!paths.ok()) return paths.status();
  std::vector<std::pair<int64_t, std::string>> functions;
  absl::Status status = paths->ForEachRow([&] {
    functions.emplace_back(paths->Int(0), FunctionOf(absl::StrSplit(paths->Text(1), ';')));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  absl::StatusOr<Statement> rename = db_.Prepare("UPDATE paths SET leaf = ?2 WHERE path_id = ?1");
  if (!rename.ok()) return rename.status();
  for (const auto& [path_id, function] : functions) {
    rename->Reset();
    if (status = rename->Bind(1, path_id).Bind(2, function).Run(); !status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<Store::EpochInfo> Store::OpenEpoch(const apq::v1::Hello& hello, EpochState* state) {
  if (hello.cluster().empty() || hello.host().empty()) {
    return absl::InvalidArgumentError("hello without cluster or host name");
  }
  EpochInfo info;
  if (absl::Status status = OpenEpochRow(hello, &info); !status.ok()) return status;
  absl::StatusOr<EpochState> loaded = LoadEpoch(info.epoch_id);
  if (!loaded.ok()) return loaded.status();
  *state = std::move(*loaded);
  return info;
}

absl::Status Store::OpenEpochRow(const apq::v1::Hello& hello, EpochInfo* info) {
  absl::StatusOr<Transaction> transaction = Transaction::Begin(&db_);
  if (!transaction.ok()) return transaction.status();
  absl::StatusOr<Statement> host = db_.Prepare(
      "INSERT INTO hosts (cluster, name) VALUES (?1, ?2) ON CONFLICT (cluster, name) DO UPDATE SET name = name "
      "RETURNING host_id");
  if (!host.ok()) return host.status();
  host->Bind(1, hello.cluster()).Bind(2, hello.host());
  absl::StatusOr<bool> row = host->Step();
  if (!row.ok() || !*row) return row.ok() ? absl::InternalError("no host id") : row.status();
  int64_t host_id = host->Int(0);
  host->Reset();  // a stepped RETURNING statement would hold the transaction open

  absl::StatusOr<Statement> epoch = db_.Prepare(
      "INSERT INTO epochs (host_id, boot_id, agent_instance, kernel_release, build_id, sample_bytes) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
      "ON CONFLICT (host_id, boot_id, agent_instance) DO UPDATE SET host_id = host_id "
      "RETURNING epoch_id, build_id, sample_bytes, last_report_ms");
  if (!epoch.ok()) return epoch.status();
  epoch->Bind(1, host_id)
      .Bind(2, hello.epoch().boot_id())
      .Bind(3, static_cast<int64_t>(hello.epoch().agent_instance()))
      .Bind(4, hello.kernel().release())
      .BindBlob(5, hello.kernel().build_id())
      .Bind(6, static_cast<int64_t>(hello.sample_bytes()));
  row = epoch->Step();
  if (!row.ok() || !*row) return row.ok() ? absl::InternalError("no epoch id") : row.status();
  // A resumed epoch keeps what it was opened with.
  *info = EpochInfo{epoch->Int(0), host_id, hello.cluster(), hello.host(), epoch->Text(1),
                    static_cast<uint64_t>(epoch->Int(2)), epoch->Int(3)};
  epoch->Reset();
  return transaction->Commit();
}

absl::StatusOr<std::vector<Store::EpochInfo>> Store::RecentEpochs(int64_t since_ms) {
  absl::StatusOr<Statement> query = db_.Prepare(
      "SELECT e.epoch_id, e.host_id, h.cluster, h.name, e.build_id, e.sample_bytes, e.last_report_ms "
      "FROM epochs e JOIN hosts h USING (host_id) WHERE e.last_report_ms >= ?1 "
      "AND e.epoch_id = (SELECT max(epoch_id) FROM epochs WHERE host_id = e.host_id)");
  if (!query.ok()) return query.status();
  std::vector<EpochInfo> epochs;
  absl::Status status = query->Bind(1, since_ms).ForEachRow([&] {
    epochs.push_back({query->Int(0), query->Int(1), query->Text(2), query->Text(3), query->Text(4),
                      static_cast<uint64_t>(query->Int(5)), query->Int(6)});
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return epochs;
}

absl::StatusOr<EpochState> Store::LoadEpoch(int64_t epoch_id) {
  absl::StatusOr<Statement> last = db_.Prepare("SELECT last_sequence, memory FROM epochs WHERE epoch_id = ?1");
  if (!last.ok()) return last.status();
  last->Bind(1, epoch_id);
  absl::StatusOr<bool> row = last->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("epoch ", epoch_id));
  auto last_sequence = static_cast<uint64_t>(last->Int(0));
  std::optional<apq::v1::HostMemory> memory;
  if (!last->IsNull(1) && !memory.emplace().ParseFromString(last->Text(1))) {
    return absl::DataLossError(absl::StrCat("epoch ", epoch_id, ": stored host memory does not parse"));
  }

  absl::flat_hash_map<uint32_t, apq::v1::CodeObject> objects;
  absl::flat_hash_map<uint32_t, apq::v1::StackDefinition> stacks;
  absl::flat_hash_map<uint32_t, EpochState::Series> series;
  absl::StatusOr<Statement> query = db_.Prepare("SELECT object_id, name, build_id FROM objects WHERE epoch_id = ?1");
  if (!query.ok()) return query.status();
  absl::Status status = query->Bind(1, epoch_id).ForEachRow([&] {
    apq::v1::CodeObject& object = objects[static_cast<uint32_t>(query->Int(0))];
    object.set_id(static_cast<uint32_t>(query->Int(0)));
    object.set_name(query->Text(1));
    object.set_build_id(query->Text(2));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  query = db_.Prepare("SELECT stack_id, definition FROM stacks WHERE epoch_id = ?1");
  if (!query.ok()) return query.status();
  status = query->Bind(1, epoch_id).ForEachRow([&] {
    if (!stacks[static_cast<uint32_t>(query->Int(0))].ParseFromString(query->Text(1))) {
      return absl::DataLossError(absl::StrCat("epoch ", epoch_id, ": stored stack ", query->Int(0), " does not parse"));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  query = db_.Prepare(
      "SELECT series_id, key, pages_outstanding, pages_allocated, allocations, class_pages FROM series "
      "WHERE epoch_id = ?1");
  if (!query.ok()) return query.status();
  status = query->Bind(1, epoch_id).ForEachRow([&] {
    EpochState::Series& s = series[static_cast<uint32_t>(query->Int(0))];
    if (!s.key.ParseFromString(query->Text(1))) {
      return absl::DataLossError(absl::StrCat("epoch ", epoch_id, ": stored series ", query->Int(0), " does not parse"));
    }
    s.pages_outstanding = query->Int(2);
    s.pages_allocated = static_cast<uint64_t>(query->Int(3));
    s.allocations = static_cast<uint64_t>(query->Int(4));
    if (query->IsNull(5)) return absl::OkStatus();
    apq::v1::PagesByClass split;
    if (!split.ParseFromString(query->Text(5))) {
      return absl::DataLossError(absl::StrCat("epoch ", epoch_id, ": stored classes of series ", query->Int(0),
                                              " do not parse"));
    }
    s.class_pages = PagesOfClasses(split);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return EpochState(last_sequence, std::move(series), std::move(stacks), std::move(objects), std::move(memory));
}

Store::AppliedReport Store::Applied(int64_t epoch_id, const EpochState& state, const apq::v1::Report& report,
                                    int64_t received_millis) {
  AppliedReport applied{epoch_id, &report, received_millis, {}, {}};
  applied.series.reserve(static_cast<size_t>(report.series_size()));
  for (const apq::v1::SeriesDelta& delta : report.series()) {
    auto series = state.series().find(delta.series_id());
    if (series != state.series().end()) applied.series.emplace_back(delta.series_id(), series->second);
  }
  applied.retired.assign(report.retired_series().begin(), report.retired_series().end());
  return applied;
}

absl::Status Store::StoreReport(const AppliedReport& applied) {
  const int64_t epoch_id = applied.epoch_id;
  const apq::v1::Report& report = *applied.report;
  if (report.full_snapshot()) {
    for (const char* table : {"objects", "stacks", "series"}) {
      absl::StatusOr<Statement> clear = db_.Prepare(absl::StrCat("DELETE FROM ", table, " WHERE epoch_id = ?1"));
      if (!clear.ok()) return clear.status();
      if (absl::Status status = clear->Bind(1, epoch_id).Run(); !status.ok()) return status;
    }
  }
  absl::StatusOr<Statement> object =
      db_.Prepare("INSERT OR REPLACE INTO objects (epoch_id, object_id, name, build_id) VALUES (?1, ?2, ?3, ?4)");
  if (!object.ok()) return object.status();
  for (const apq::v1::CodeObject& o : report.objects()) {
    object->Reset();
    object->Bind(1, epoch_id).Bind(2, static_cast<int64_t>(o.id())).Bind(3, o.name()).BindBlob(4, o.build_id());
    if (absl::Status status = object->Run(); !status.ok()) return status;
  }
  absl::StatusOr<Statement> stack =
      db_.Prepare("INSERT OR REPLACE INTO stacks (epoch_id, stack_id, definition) VALUES (?1, ?2, ?3)");
  if (!stack.ok()) return stack.status();
  for (const apq::v1::StackDefinition& s : report.stacks()) {
    stack->Reset();
    stack->Bind(1, epoch_id).Bind(2, static_cast<int64_t>(s.id())).BindBlob(3, s.SerializeAsString());
    if (absl::Status status = stack->Run(); !status.ok()) return status;
  }
  absl::StatusOr<Statement> series = db_.Prepare(
      "INSERT OR REPLACE INTO series (epoch_id, series_id, key, pages_outstanding, pages_allocated, allocations, "
      "class_pages) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!series.ok()) return series.status();
  for (const auto& [series_id, now] : applied.series) {
    series->Reset();
    series->Bind(1, epoch_id)
        .Bind(2, static_cast<int64_t>(series_id))
        .BindBlob(3, now.key.SerializeAsString())
        .Bind(4, now.pages_outstanding)
        .Bind(5, static_cast<int64_t>(now.pages_allocated))
        .Bind(6, static_cast<int64_t>(now.allocations));
    if (now.class_pages) {
      series->BindBlob(7, ClassesOfPages(*now.class_pages).SerializeAsString());
    } else {
      series->BindNull(7);
    }
    if (absl::Status status = series->Run(); !status.ok()) return status;
  }
  absl::StatusOr<Statement> retire = db_.Prepare("DELETE FROM series WHERE epoch_id = ?1 AND series_id = ?2");
  if (!retire.ok()) return retire.status();
  for (uint32_t series_id : applied.retired) {
    retire->Reset();
    retire->Bind(1, epoch_id).Bind(2, static_cast<int64_t>(series_id));
    if (absl::Status status = retire->Run(); !status.ok()) return status;
  }
  absl::StatusOr<Statement> epoch = db_.Prepare(
      "UPDATE epochs SET last_sequence = ?2, last_report_ms = ?3, losses = ?4, coverage = ?5, "
      "memory = CASE WHEN ?6 THEN ?7 ELSE memory END WHERE epoch_id = ?1");
  if (!epoch.ok()) return epoch.status();
  // The memory column follows EpochState: set by a report that carries it,
  // cleared by a snapshot that does not.
  const bool memory_changes = report.has_memory() || report.full_snapshot();
  epoch->Bind(1, epoch_id)
      .Bind(2, static_cast<int64_t>(report.sequence()))
      .Bind(3, applied.received_millis)
      .BindBlob(4, report.losses().SerializeAsString())
      .BindBlob(5, report.coverage().SerializeAsString())
      .Bind(6, int64_t{memory_changes});
  if (report.has_memory()) {
    epoch->BindBlob(7, report.memory().SerializeAsString());
  } else {
    epoch->BindNull(7);
  }
  return epoch->Run();
}

absl::Status Store::CommitReports(absl::Span<const AppliedReport* const> reports) {
  absl::StatusOr<Transaction> transaction = Transaction::Begin(&db_);
  if (!transaction.ok()) return transaction.status();
  for (const AppliedReport* applied : reports) {
    if (absl::Status status = StoreReport(*applied); !status.ok()) return status;
  }
  return transaction->Commit();
}

absl::StatusOr<apq::v1::HostsResponse> Store::Hosts(const apq::v1::HostsRequest& request) {
  absl::StatusOr<Statement> query = reader_.Prepare(
      "SELECT h.name, e.kernel_release, e.build_id, e.last_report_ms, e.sample_bytes, e.losses, e.coverage, e.memory "
      "FROM epochs e JOIN hosts h USING (host_id) WHERE h.cluster = ?1 "
      "AND e.epoch_id = (SELECT max(epoch_id) FROM epochs WHERE host_id = e.host_id) ORDER BY h.name");
  if (!query.ok()) return query.status();
  query->Bind(1, request.cluster());
  apq::v1::HostsResponse response;
  absl::Status status = query->ForEachRow([&] {
    apq::v1::HostInfo* host = response.add_hosts();
    host->set_host(query->Text(0));
    host->mutable_kernel()->set_release(query->Text(1));
    host->mutable_kernel()->set_build_id(query->Text(2));
    host->set_last_report_unix_millis(query->Int(3));
    host->set_sample_bytes(static_cast<uint64_t>(query->Int(4)));
    host->mutable_losses()->ParseFromString(query->Text(5));
    host->mutable_coverage()->ParseFromString(query->Text(6));
    apq::v1::HostMemory memory;
    if (!query->IsNull(7) && memory.ParseFromString(query->Text(7))) {
      host->set_classified_unix_millis(memory.classified_unix_millis());
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return response;
}

absl::Status Store::PutSymbolTable(const apq::v1::SymbolTable& table) {
  absl::StatusOr<Statement> put =
      db_.Prepare("INSERT OR REPLACE INTO symbol_tables (object, build_id, symbols) VALUES (?1, ?2, ?3)");
  if (!put.ok()) return put.status();
  return put->Bind(1, table.object()).BindBlob(2, table.build_id()).BindBlob(3, table.SerializeAsString()).Run();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Store::SymbolTables() {
  absl::StatusOr<Statement> query = db_.Prepare("SELECT object, build_id FROM symbol_tables");
  if (!query.ok()) return query.status();
  std::vector<std::pair<std::string, std::string>> tables;
  absl::Status status = query->ForEachRow([&] {
    tables.emplace_back(query->Text(0), query->Text(1));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return tables;
}

absl::StatusOr<std::optional<apq::v1::SymbolTable>> Store::ReadSymbolTable(const std::string& object,
                                                                           const std::string& build_id) {
  absl::StatusOr<Statement> query =
      reader_.Prepare("SELECT symbols FROM symbol_tables WHERE object = ?1 AND build_id = ?2");
  if (!query.ok()) return query.status();
  query->Bind(1, object).BindBlob(2, build_id);
  absl::StatusOr<bool> row = query->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::nullopt;
  apq::v1::SymbolTable table;
  if (!table.ParseFromString(query->Text(0))) {
    return absl::DataLossError(absl::StrCat("stored symbol table of ", object, " does not parse"));
  }
  return table;
}

absl::StatusOr<int64_t> Store::PathId(const std::string& folded) {
  if (auto known = path_ids_.find(folded); known != path_ids_.end()) return known->second;
  absl::StatusOr<Statement> insert = db_.Prepare(
      "INSERT INTO paths (folded, leaf) VALUES (?1, ?2) ON CONFLICT (folded) DO UPDATE SET leaf = leaf "
      "RETURNING path_id");
  if (!insert.ok()) return insert.status();
  // The leaf column is the path's function (--by function): its frames are the folded names.
  insert->Bind(1, folded).Bind(2, FunctionOf(absl::StrSplit(folded, ';')));
  absl::StatusOr<bool> row = insert->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("no path id");
  int64_t id = insert->Int(0);
  insert->Reset();
  if (path_ids_.size() >= (1u << 20)) path_ids_.clear();  // bounded; ids are in the file anyway
  path_ids_.emplace(folded, id);
  return id;
}

absl::Status Store::WriteSample(const FleetSample& sample) {
  const int64_t minute = sample.minute, hour = FloorDiv(minute * kMinuteMillis, kHourMillis);
  absl::StatusOr<Transaction> transaction = Transaction::Begin(&db_);
  if (!transaction.ok()) return transaction.status();
  auto fail = [&](absl::Status status) {
    path_ids_.clear();  // it may hold ids whose insert the transaction rolls back
    return status;
  };
  // Every cluster gets a sample row, so a cluster whose hosts all left reads as empty, not as it last was.
  absl::StatusOr<Statement> clusters = db_.Prepare(
      "INSERT OR REPLACE INTO cluster_samples (minute, cluster, hosts) SELECT DISTINCT ?1, cluster, 0 FROM hosts");
  if (!clusters.ok()) return fail(clusters.status());
  if (absl::Status status = clusters->Bind(1, minute).Run(); !status.ok()) return fail(status);
  absl::StatusOr<Statement> hosts =
      db_.Prepare("UPDATE cluster_samples SET hosts = ?3 WHERE minute = ?1 AND cluster = ?2");
  if (!hosts.ok()) return fail(hosts.status());
  for (const auto& [cluster, count] : sample.cluster_hosts) {
    hosts->Reset();
    hosts->Bind(1, minute).Bind(2, cluster).Bind(3, static_cast<int64_t>(count));
    if (absl::Status status = hosts->Run(); !status.ok()) return fail(status);
  }

  // This minute's rows and this hour's "last" values are the newest sample's:
  // paths absent from it are at zero now.
  const std::pair<const char*, int64_t> resets[] = {
      {"DELETE FROM cluster_minutes WHERE minute = ?1", minute},
      {"UPDATE cluster_hours SET bytes = 0, variance = 0, hosts = 0 WHERE hour = ?1", hour},
      {"UPDATE host_hours SET bytes = 0, variance = 0 WHERE hour = ?1", hour},
  };
  auto run_each = [&](absl::Span<const std::pair<const char*, int64_t>> statements) {
    for (const auto& [sql, value] : statements) {
      absl::StatusOr<Statement> statement = db_.Prepare(sql);
      if (!statement.ok()) return statement.status();
      if (absl::Status status = statement->Bind(1, value).Run(); !status.ok()) return status;
    }
    return absl::OkStatus();
  };
  if (absl::Status status = run_each(resets); !status.ok()) return fail(status);
  absl::StatusOr<Statement> minute_row = db_.Prepare(
      "INSERT OR REPLACE INTO cluster_minutes (minute, cluster, build_id, path_id, bytes, variance, hosts) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  absl::StatusOr<Statement> hour_row = db_.Prepare(
      "INSERT INTO cluster_hours (hour, cluster, build_id, path_id, bytes, variance, hosts, peak_bytes, "
      "peak_variance, peak_hosts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?5, ?6, ?7) "
      "ON CONFLICT DO UPDATE SET bytes = excluded.bytes, variance = excluded.variance, hosts = excluded.hosts, "
      "peak_variance = iif(excluded.bytes > peak_bytes, excluded.variance, peak_variance), "
      "peak_hosts = iif(excluded.bytes > peak_bytes, excluded.hosts, peak_hosts), "
      "peak_bytes = max(peak_bytes, excluded.bytes)");
  absl::StatusOr<Statement> host_row = db_.Prepare(
      "INSERT INTO host_hours (hour, host_id, path_id, build_id, bytes, variance, peak_bytes, peak_variance) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?6) "
      "ON CONFLICT DO UPDATE SET build_id = excluded.build_id, bytes = excluded.bytes, variance = excluded.variance, "
      "peak_variance = iif(excluded.bytes > peak_bytes, excluded.variance, peak_variance), "
      "peak_bytes = max(peak_bytes, excluded.bytes)");
  for (const absl::StatusOr<Statement>* statement : {&minute_row, &hour_row, &host_row}) {
    if (!statement->ok()) return fail(statement->status());
  }
  for (const auto& [key, cell] : sample.clusters) {
    const auto& [cluster, build_id, folded] = key;
    absl::StatusOr<int64_t> path = PathId(folded);
    if (!path.ok()) return fail(path.status());
    for (auto [statement, time] : {std::pair{&*minute_row, minute}, std::pair{&*hour_row, hour}}) {
      statement->Reset();
      statement->Bind(1, time).Bind(2, cluster).BindBlob(3, build_id).Bind(4, *path).Bind(5, cell.bytes)
          .Bind(6, cell.variance).Bind(7, static_cast<int64_t>(cell.hosts));
      if (absl::Status status = statement->Run(); !status.ok()) return fail(status);
    }
  }
  for (const auto& [host_id, host] : sample.hosts) {
    for (const auto& [folded, cell] : LargestPaths(host, kHostPathsPerHour)) {
      absl::StatusOr<int64_t> path = PathId(folded);
      if (!path.ok()) return fail(path.status());
      host_row->Reset();
      host_row->Bind(1, hour).Bind(2, host_id).Bind(3, *path).BindBlob(4, host.build_id).Bind(5, cell.bytes)
          .Bind(6, cell.variance);
      if (absl::Status status = host_row->Run(); !status.ok()) return fail(status);
    }
  }

  // Retention: rows past their resolution's horizon go.
  const int64_t now_millis = minute * kMinuteMillis;
  const std::pair<const char*, int64_t> horizons[] = {
      {"DELETE FROM cluster_minutes WHERE minute < ?1", FloorDiv(now_millis - retention_.minute_millis, kMinuteMillis)},
      {"DELETE FROM cluster_samples WHERE minute < ?1", FloorDiv(now_millis - retention_.hour_millis, kMinuteMillis)},
      {"DELETE FROM cluster_hours WHERE hour < ?1", FloorDiv(now_millis - retention_.hour_millis, kHourMillis)},
      {"DELETE FROM host_hours WHERE hour < ?1", FloorDiv(now_millis - retention_.host_hour_millis, kHourMillis)},
  };
  if (absl::Status status = run_each(horizons); !status.ok()) return fail(status);
  if (absl::Status status = transaction->Commit(); !status.ok()) return fail(status);
  return absl::OkStatus();
}

absl::StatusOr<apq::v1::TopResponse> Store::TopFromHistory(const apq::v1::TopRequest& request, int64_t now_millis) {
  const apq::v1::GroupBy by = request.group_by();
  if (by == apq::v1::GROUP_BY_PROCESS || by == apq::v1::GROUP_BY_CGROUP) {
    return absl::InvalidArgumentError(
        "history keeps paths, functions, builds and hosts; --by process and --by cgroup answer only for now");
  }
  const int64_t at = request.at_unix_millis() != 0 ? request.at_unix_millis() : now_millis;
  const int64_t since = request.since_unix_millis();
  if (at < 0 || since < 0) return absl::InvalidArgumentError("times must be after 1970");
  if (since != 0 && since > at) return absl::InvalidArgumentError("--since is after --at");
  if (at > now_millis + kMinuteMillis) return absl::InvalidArgumentError("--at is in the future");
  const bool range = since != 0;
  const int64_t minute_horizon = FloorDiv(now_millis - retention_.minute_millis, kMinuteMillis) + 1;

  std::string key;
  switch (by) {
    case apq::v1::GROUP_BY_FUNCTION: key = "p.leaf"; break;
    case apq::v1::GROUP_BY_BUILD: key = "lower(hex(c.build_id))"; break;
    case apq::v1::GROUP_BY_HOST: key = "n.name"; break;
    default: key = "p.folded"; break;
  }
  const std::string filters =
      "AND (length(?4) = 0 OR c.build_id = ?4) AND (?5 = '' OR instr(p.folded, ?5) > 0) ";
  // Each group's value per sample, then its largest over the samples (one
  // sample for "at"); the bare columns come from that largest row.
  if (by == apq::v1::GROUP_BY_HOST || !request.host().empty()) {
    const int64_t first = FloorDiv(range ? since : at, kHourMillis), last = FloorDiv(at, kHourMillis);
    const char* value = range ? "c.peak_bytes" : "c.bytes";
    const char* variance = range ? "c.peak_variance" : "c.variance";
    return HistoryRows(request,
                       absl::StrCat("SELECT key, max(b), v, h, t FROM (SELECT c.hour t, ", key, " key, sum(", value,
                                    ") b, sum(", variance, ") v, count(DISTINCT c.host_id) h ",
                                    "FROM host_hours c JOIN hosts n USING (host_id) JOIN paths p USING (path_id) "
                                    "WHERE c.hour BETWEEN ?1 AND ?2 AND n.cluster = ?3 AND (?7 = '' OR n.name = ?7) ",
                                    filters, "GROUP BY c.hour, key) GROUP BY key HAVING max(b) > 0 ORDER BY 2 DESC, 1 LIMIT ?6"),
                       first, last, kHourMillis, 0);
  }
  int64_t first = FloorDiv(since, kMinuteMillis), last = FloorDiv(at, kMinuteMillis);
  if (!range) {  // the newest sample at or before "at"
    absl::StatusOr<Statement> newest =
        reader_.Prepare("SELECT max(minute) FROM cluster_samples WHERE cluster = ?1 AND minute <= ?2");
    if (!newest.ok()) return newest.status();
    newest->Bind(1, request.cluster()).Bind(2, last);
    absl::StatusOr<bool> row = newest->Step();
    if (!row.ok()) return row.status();
    if (newest->IsNull(0)) return apq::v1::TopResponse();  // no sample yet
    first = last = newest->Int(0);
  }
  const bool minutes = first >= minute_horizon;
  const int64_t unit = minutes ? kMinuteMillis : kHourMillis;
  if (!minutes) {
    first = FloorDiv(first * kMinuteMillis, kHourMillis);
    last = FloorDiv(last * kMinuteMillis, kHourMillis);
  }
  absl::StatusOr<Statement> hosts = reader_.Prepare(
      "SELECT max(hosts) FROM cluster_samples WHERE cluster = ?1 AND minute BETWEEN ?2 AND ?3");
  if (!hosts.ok()) return hosts.status();
  hosts->Bind(1, request.cluster()).Bind(2, first * unit / kMinuteMillis).Bind(3, (last + 1) * unit / kMinuteMillis - 1);
  absl::StatusOr<bool> row = hosts->Step();
  if (!row.ok()) return row.status();
  const auto hosts_sampled = static_cast<uint32_t>(hosts->Int(0));
  const char* table = minutes ? "cluster_minutes" : "cluster_hours";
  const char* time = minutes ? "minute" : "hour";
  const char* value = !minutes && range ? "peak_" : "";
  return HistoryRows(
      request,
      absl::StrCat("SELECT key, max(b), v, h, t FROM (SELECT t, key, sum(b) b, sum(v) v, sum(h) h FROM (SELECT c.", time,
                   " t, ", key, " key, c.build_id, sum(c.", value, "bytes) b, sum(c.", value, "variance) v, max(c.", value,
                   "hosts) h FROM ", table, " c JOIN paths p USING (path_id) WHERE c.", time,
                   " BETWEEN ?1 AND ?2 AND c.cluster = ?3 ", filters,
                   "GROUP BY t, key, c.build_id) GROUP BY t, key) GROUP BY key HAVING max(b) > 0 ORDER BY 2 DESC, 1 LIMIT ?6"),
      first, last, unit, hosts_sampled);
}

absl::StatusOr<DiffSide> Store::HistoryForDiff(const std::string& cluster, const apq::v1::DiffSelector& selector,
                                               apq::v1::GroupBy by, int64_t now_millis, int64_t* resolution_millis) {
  const std::string& prefix = selector.build_hex_prefix();
  if (prefix.size() > 80 || !std::all_of(prefix.begin(), prefix.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    return absl::InvalidArgumentError("build= takes lower-case hex");
  }
  const bool point = selector.from_unix_millis() == selector.to_unix_millis();
  const int64_t to = selector.to_unix_millis() != 0 ? selector.to_unix_millis() : now_millis;
  const int64_t from = point ? to : selector.from_unix_millis();
  if (from < 0 || from > to) return absl::InvalidArgumentError("a time range must run forwards, after 1970");
  // Per host (host= or --by host): the hourly host rows; else the cluster rows.
  const bool per_host = !selector.host().empty() || by == apq::v1::GROUP_BY_HOST;
  const int64_t minute_horizon = FloorDiv(now_millis - retention_.minute_millis, kMinuteMillis) + 1;
  const bool minutes = !per_host && FloorDiv(from, kMinuteMillis) >= minute_horizon;
  const int64_t unit = minutes ? kMinuteMillis : kHourMillis;
  *resolution_millis = unit;
  std::string key;
  switch (by) {
    case apq::v1::GROUP_BY_FUNCTION: key = "p.leaf"; break;
    case apq::v1::GROUP_BY_BUILD: key = "lower(hex(c.build_id))"; break;
    case apq::v1::GROUP_BY_HOST: key = "n.name"; break;
    case apq::v1::GROUP_BY_STACK: key = "p.folded"; break;
    default: return absl::InvalidArgumentError("diff groups by stack, function, host or build: history keeps no more");
  }
  const char* time = per_host ? "c.hour" : minutes ? "c.minute" : "c.hour";
  const std::string from_clause =
      per_host ? "host_hours c JOIN hosts n USING (host_id)"
               : absl::StrCat(minutes ? "cluster_minutes" : "cluster_hours", " c");
  const std::string where = absl::StrCat(
      per_host ? "n.cluster = ?1" : "c.cluster = ?1", " AND ", time, " BETWEEN ?2 AND ?3 ",
      "AND (?4 = '' OR lower(hex(c.build_id)) LIKE ?4 || '%') ",
      "AND (?5 = '' OR c.build_id IN (SELECT build_id FROM epochs WHERE kernel_release = ?5)) ",
      per_host ? "AND (?6 = '' OR n.name = ?6) " : "");
  auto bind = [&](Statement& statement, int64_t first, int64_t last) {
    statement.Bind(1, cluster).Bind(2, first).Bind(3, last).Bind(4, prefix).Bind(5, selector.release());
    if (per_host) statement.Bind(6, selector.host());
  };
  // The cohort: per sample, the hosts the selector takes (a host of the
  // cluster rows is counted by the most hosts any path of its build has).
  const std::string cohort_sql =
      per_host ? absl::StrCat("SELECT ", time, ", count(DISTINCT c.host_id) FROM ", from_clause, " WHERE ", where,
                              "GROUP BY 1")
               : absl::StrCat("SELECT t, sum(h) FROM (SELECT ", time, " t, c.build_id, max(c.hosts) h FROM ",
                              from_clause, " WHERE ", where, "GROUP BY 1, 2) GROUP BY t");
  int64_t first = FloorDiv(from, unit), last = FloorDiv(to, unit);
  // An hourly row holds the hour's last sample: the hour of a past time
  // holds later samples, so "at or before" takes the hour before it.
  if (point && !minutes && to < now_millis - kMinuteMillis) --last;
  if (point) first = 0;  // the newest sample at or before
  absl::StatusOr<Statement> cohort = reader_.Prepare(cohort_sql);
  if (!cohort.ok()) return cohort.status();
  bind(*cohort, first, last);
  DiffSide side;
  absl::Status status = cohort->ForEachRow([&] {
    if (cohort->Int(1) > 0) side.cohort[cohort->Int(0)] = static_cast<uint32_t>(cohort->Int(1));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  if (point && !side.cohort.empty()) {
    const auto newest = *side.cohort.rbegin();
    side.cohort = {newest};
    first = last = newest.first;
  }
  if (side.cohort.empty()) return side;
  const std::string cells_sql =
      per_host ? absl::StrCat("SELECT ", time, ", ", key, ", sum(c.bytes), sum(c.variance), count(DISTINCT c.host_id) ",
                              "FROM ", from_clause, " JOIN paths p USING (path_id) WHERE ", where, "GROUP BY 1, 2")
               : absl::StrCat("SELECT t, k, sum(b), sum(v), sum(h) FROM (SELECT ", time, " t, ", key,
                              " k, c.build_id, sum(c.bytes) b, sum(c.variance) v, max(c.hosts) h FROM ", from_clause,
                              " JOIN paths p USING (path_id) WHERE ", where, "GROUP BY 1, 2, 3) GROUP BY t, k");
  absl::StatusOr<Statement> cells = reader_.Prepare(cells_sql);
  if (!cells.ok()) return cells.status();
  bind(*cells, first, last);
  status = cells->ForEachRow([&] {
    side.cells.push_back({cells->Int(0), cells->Text(1), cells->Double(2), cells->Double(3),
                          static_cast<uint32_t>(cells->Int(4))});
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return side;
}

absl::StatusOr<apq::v1::TopResponse> Store::HistoryRows(const apq::v1::TopRequest& request, const std::string& sql,
                                                        int64_t first, int64_t last, int64_t unit_millis,
                                                        uint32_t hosts_sampled) {
  absl::StatusOr<Statement> query = reader_.Prepare(sql);
  if (!query.ok()) return query.status();
  query->Bind(1, first)
      .Bind(2, last)
      .Bind(3, request.cluster())
      .BindBlob(4, request.build_id())
      .Bind(5, request.frame_substring())
      .Bind(6, request.top() == 0 ? int64_t{-1} : static_cast<int64_t>(request.top()));
  if (query->Parameters() >= 7) query->Bind(7, request.host());
  apq::v1::TopResponse response;
  absl::Status status = query->ForEachRow([&] {
    apq::v1::TopEntry* entry = response.add_entries();
    entry->set_key(query->Text(0));
    entry->set_bytes_outstanding(query->Double(1));
    entry->set_standard_error(std::sqrt(std::max(0.0, query->Double(2))));
    entry->set_hosts(static_cast<uint32_t>(query->Int(3)));
    response.set_hosts_selected(std::max(response.hosts_selected(), entry->hosts()));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  if (hosts_sampled) response.set_hosts_selected(hosts_sampled);
  response.set_first_sample_unix_millis(first * unit_millis);
  response.set_last_sample_unix_millis(last * unit_millis);
  response.set_resolution_millis(unit_millis);
  return response;
}

absl::Status Store::PruneEpochs(int64_t now_millis, const absl::flat_hash_set<int64_t>& attached) {
  absl::StatusOr<Statement> old = db_.Prepare(
      "SELECT epoch_id FROM epochs e WHERE last_report_ms < ?1 AND (last_report_ms < ?2 "
      "OR epoch_id < (SELECT max(epoch_id) FROM epochs WHERE host_id = e.host_id))");
  if (!old.ok()) return old.status();
  std::vector<int64_t> doomed;
  absl::Status status = old->Bind(1, now_millis - kOldEpochMillis)
                            .Bind(2, now_millis - retention_.host_hour_millis)
                            .ForEachRow([&] {
                              if (!attached.contains(old->Int(0))) doomed.push_back(old->Int(0));
                              return absl::OkStatus();
                            });
  if (!status.ok() || doomed.empty()) return status;
  absl::StatusOr<Transaction> transaction = Transaction::Begin(&db_);
  if (!transaction.ok()) return transaction.status();
  for (int64_t epoch_id : doomed) {
    for (const char* table : {"series", "stacks", "objects", "epochs"}) {
      absl::StatusOr<Statement> erase = db_.Prepare(absl::StrCat("DELETE FROM ", table, " WHERE epoch_id = ?1"));
      if (!erase.ok()) return erase.status();
      if (status = erase->Bind(1, epoch_id).Run(); !status.ok()) return status;
    }
  }
  return transaction->Commit();
}

}  // namespace apq
