#include "aggregator/store.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/stack_paths.h"
#include "common/status_macros.h"

namespace apq {
namespace {

// 4: paths.leaf recomputed (FunctionOf learnt the huge-page wrappers).
// 5: symbol tables per cluster.
constexpr int kSchemaVersion = 5;
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
CREATE TABLE IF NOT EXISTS cluster_symbol_tables (
  cluster TEXT NOT NULL,
  object TEXT NOT NULL,
  build_id BLOB NOT NULL,
  symbols BLOB NOT NULL,  -- apq.v1.SymbolTable
  PRIMARY KEY (cluster, object, build_id)) WITHOUT ROWID;
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
    // The fleet-wide tables go to each cluster whose stored epochs use their
    // build (the rest named no stack still held); no other cluster trusts them.
    {5, R"sql(
INSERT INTO cluster_symbol_tables (cluster, object, build_id, symbols)
  SELECT used.cluster, shared.object, shared.build_id, shared.symbols FROM symbol_tables shared
  JOIN (SELECT DISTINCT hosts.cluster, objects.name, objects.build_id
        FROM objects JOIN epochs USING (epoch_id) JOIN hosts USING (host_id)) used
  ON used.name = shared.object AND used.build_id = shared.build_id;
DROP TABLE symbol_tables;)sql"},
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path, const Retention& retention) {
  absl::StatusOr<Database> writer = Database::Open(path);
  if (!writer.ok()) return writer.status();
  absl::StatusOr<Database> reader = Database::Open(path);
  if (!reader.ok()) return reader.status();
  APQ_RETURN_IF_ERROR(reader->Exec("PRAGMA query_only=1"));
  std::unique_ptr<Store> store(new Store(std::move(*writer), std::move(*reader), retention));
  APQ_RETURN_IF_ERROR(store->CreateSchema());
  return store;
}

absl::Status Store::CreateSchema() {
  absl::StatusOr<Statement> version = db_.Prepare("PRAGMA user_version");
  if (!version.ok()) return version.status();
  absl::StatusOr<bool> row = version->Step();
  if (!row.ok()) return row.status();
  int64_t found = *row ? version->Int(0) : 0;
  version->Reset();  // a statement in progress would keep the upgrades from dropping tables
  if (found > kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("database schema version ", found, " is newer than this aggregator's ", kSchemaVersion));
  }
  absl::StatusOr<Transaction> transaction = Transaction::Begin(&db_);
  if (!transaction.ok()) return transaction.status();
  APQ_RETURN_IF_ERROR(db_.Exec(kSchema));
  for (const auto& upgrade : kUpgrades) {
    if (found == 0 || found >= upgrade.version) continue;
    if (absl::Status status = db_.Exec(upgrade.sql); !status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("upgrading the database to version ", upgrade.version, ": ", status.message()));
    }
  }
  // Each version from 3 on groups paths by FunctionOf as this build knows it.
  if (found != 0 && found < kSchemaVersion) {
    APQ_RETURN_IF_ERROR(RenamePathFunctions());
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

absl::StatusOr<Store::EpochInfo> Store::OpenEpoch(const EpochIdentity& identity) {
  if (identity.cluster.empty() || identity.host.empty()) {
    return absl::InvalidArgumentError("hello without cluster or host name");
  }
  APQ_ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(&db_));
  APQ_ASSIGN_OR_RETURN(
      Statement host,
      db_.Prepare("INSERT INTO hosts (cluster, name) VALUES (?1, ?2) ON CONFLICT (cluster, name) DO UPDATE SET "
                  "name = name RETURNING host_id"));
  host.Bind(1, identity.cluster).Bind(2, identity.host);
  APQ_ASSIGN_OR_RETURN(bool row, host.Step());
  if (!row) return absl::InternalError("no host id");
  const int64_t host_id = host.Int(0);
  host.Reset();  // a stepped RETURNING statement would hold the transaction open

  APQ_ASSIGN_OR_RETURN(
      Statement epoch,
      db_.Prepare("INSERT INTO epochs (host_id, boot_id, agent_instance, kernel_release, build_id, sample_bytes) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                  "ON CONFLICT (host_id, boot_id, agent_instance) DO UPDATE SET host_id = host_id "
                  "RETURNING epoch_id, build_id, sample_bytes, last_report_ms"));
  epoch.Bind(1, host_id)
      .Bind(2, identity.boot_id)
      .Bind(3, static_cast<int64_t>(identity.agent_instance))
      .Bind(4, identity.kernel_release)
      .BindBlob(5, identity.build_id)
      .Bind(6, static_cast<int64_t>(identity.sample_bytes));
  APQ_ASSIGN_OR_RETURN(row, epoch.Step());
  if (!row) return absl::InternalError("no epoch id");
  // A resumed epoch keeps what it was opened with.
  EpochInfo info{epoch.Int(0),  host_id,       identity.cluster,
                 identity.host, epoch.Text(1), static_cast<uint64_t>(epoch.Int(2)),
                 epoch.Int(3)};
  epoch.Reset();
  APQ_RETURN_IF_ERROR(transaction.Commit());
  return info;
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

absl::StatusOr<StoredEpoch> Store::LoadEpoch(int64_t epoch_id) {
  StoredEpoch stored;
  APQ_ASSIGN_OR_RETURN(Statement epoch, db_.Prepare("SELECT last_sequence, memory FROM epochs WHERE epoch_id = ?1"));
  APQ_ASSIGN_OR_RETURN(bool row, epoch.Bind(1, epoch_id).Step());
  if (!row) return absl::NotFoundError(absl::StrCat("epoch ", epoch_id));
  stored.last_sequence = static_cast<uint64_t>(epoch.Int(0));
  if (!epoch.IsNull(1)) stored.memory = epoch.Text(1);

  APQ_ASSIGN_OR_RETURN(Statement objects,
                       db_.Prepare("SELECT object_id, name, build_id FROM objects WHERE epoch_id = ?1"));
  APQ_RETURN_IF_ERROR(objects.Bind(1, epoch_id).ForEachRow([&] {
    stored.rows.objects.push_back({static_cast<uint32_t>(objects.Int(0)), objects.Text(1), objects.Text(2)});
    return absl::OkStatus();
  }));
  APQ_ASSIGN_OR_RETURN(Statement stacks, db_.Prepare("SELECT stack_id, definition FROM stacks WHERE epoch_id = ?1"));
  APQ_RETURN_IF_ERROR(stacks.Bind(1, epoch_id).ForEachRow([&] {
    stored.rows.stacks.push_back({static_cast<uint32_t>(stacks.Int(0)), stacks.Text(1)});
    return absl::OkStatus();
  }));
  APQ_ASSIGN_OR_RETURN(
      Statement series,
      db_.Prepare("SELECT series_id, key, pages_outstanding, pages_allocated, allocations, class_pages FROM series "
                  "WHERE epoch_id = ?1"));
  APQ_RETURN_IF_ERROR(series.Bind(1, epoch_id).ForEachRow([&] {
    EpochRows::Series& s = stored.rows.series.emplace_back();
    s.id = static_cast<uint32_t>(series.Int(0));
    s.key = series.Text(1);
    s.pages_outstanding = series.Int(2);
    s.pages_allocated = static_cast<uint64_t>(series.Int(3));
    s.allocations = static_cast<uint64_t>(series.Int(4));
    if (!series.IsNull(5)) s.class_pages = series.Text(5);
    return absl::OkStatus();
  }));
  return stored;
}

absl::Status Store::StoreReport(const EpochWrite& write) {
  const int64_t epoch_id = write.epoch_id;
  if (write.replaces_epoch) {
    for (const char* table : {"objects", "stacks", "series"}) {
      APQ_ASSIGN_OR_RETURN(Statement clear, db_.Prepare(absl::StrCat("DELETE FROM ", table, " WHERE epoch_id = ?1")));
      APQ_RETURN_IF_ERROR(clear.Bind(1, epoch_id).Run());
    }
  }
  APQ_ASSIGN_OR_RETURN(
      Statement object,
      db_.Prepare("INSERT OR REPLACE INTO objects (epoch_id, object_id, name, build_id) VALUES (?1, ?2, ?3, ?4)"));
  for (const EpochRows::Object& o : write.rows.objects) {
    object.Reset();
    APQ_RETURN_IF_ERROR(
        object.Bind(1, epoch_id).Bind(2, static_cast<int64_t>(o.id)).Bind(3, o.name).BindBlob(4, o.build_id).Run());
  }
  APQ_ASSIGN_OR_RETURN(
      Statement stack,
      db_.Prepare("INSERT OR REPLACE INTO stacks (epoch_id, stack_id, definition) VALUES (?1, ?2, ?3)"));
  for (const EpochRows::Stack& s : write.rows.stacks) {
    stack.Reset();
    APQ_RETURN_IF_ERROR(stack.Bind(1, epoch_id).Bind(2, static_cast<int64_t>(s.id)).BindBlob(3, s.definition).Run());
  }
  APQ_ASSIGN_OR_RETURN(
      Statement series,
      db_.Prepare("INSERT OR REPLACE INTO series (epoch_id, series_id, key, pages_outstanding, pages_allocated, "
                  "allocations, class_pages) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  for (const EpochRows::Series& s : write.rows.series) {
    series.Reset();
    series.Bind(1, epoch_id)
        .Bind(2, static_cast<int64_t>(s.id))
        .BindBlob(3, s.key)
        .Bind(4, s.pages_outstanding)
        .Bind(5, static_cast<int64_t>(s.pages_allocated))
        .Bind(6, static_cast<int64_t>(s.allocations));
    s.class_pages ? series.BindBlob(7, *s.class_pages) : series.BindNull(7);
    APQ_RETURN_IF_ERROR(series.Run());
  }
  APQ_ASSIGN_OR_RETURN(Statement retire, db_.Prepare("DELETE FROM series WHERE epoch_id = ?1 AND series_id = ?2"));
  for (uint32_t series_id : write.retired_series) {
    retire.Reset();
    APQ_RETURN_IF_ERROR(retire.Bind(1, epoch_id).Bind(2, static_cast<int64_t>(series_id)).Run());
  }
  APQ_ASSIGN_OR_RETURN(
      Statement epoch,
      db_.Prepare("UPDATE epochs SET last_sequence = ?2, last_report_ms = ?3, losses = ?4, coverage = ?5, "
                  "memory = CASE WHEN ?6 THEN ?7 ELSE memory END WHERE epoch_id = ?1"));
  epoch.Bind(1, epoch_id)
      .Bind(2, static_cast<int64_t>(write.sequence))
      .Bind(3, write.received_millis)
      .BindBlob(4, write.losses)
      .BindBlob(5, write.coverage)
      .Bind(6, int64_t{write.memory_changes});
  write.memory ? epoch.BindBlob(7, *write.memory) : epoch.BindNull(7);
  return epoch.Run();
}

absl::Status Store::CommitReports(absl::Span<const EpochWrite* const> writes) {
  APQ_ASSIGN_OR_RETURN(Transaction transaction, Transaction::Begin(&db_));
  for (const EpochWrite* write : writes) APQ_RETURN_IF_ERROR(StoreReport(*write));
  return transaction.Commit();
}

absl::Status Store::PutSymbolTable(const std::string& cluster, const apq::v1::SymbolTable& table) {
  APQ_ASSIGN_OR_RETURN(Statement put, db_.Prepare("INSERT OR REPLACE INTO cluster_symbol_tables "
                                                  "(cluster, object, build_id, symbols) VALUES (?1, ?2, ?3, ?4)"));
  return put.Bind(1, cluster)
      .Bind(2, table.object())
      .BindBlob(3, table.build_id())
      .BindBlob(4, table.SerializeAsString())
      .Run();
}

absl::StatusOr<std::vector<SymbolTableKey>> Store::SymbolTables() {
  APQ_ASSIGN_OR_RETURN(Statement query, db_.Prepare("SELECT cluster, object, build_id FROM cluster_symbol_tables"));
  std::vector<SymbolTableKey> tables;
  APQ_RETURN_IF_ERROR(query.ForEachRow([&] {
    tables.push_back({query.Text(0), query.Text(1), query.Text(2)});
    return absl::OkStatus();
  }));
  return tables;
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
      APQ_RETURN_IF_ERROR(statement->Bind(1, value).Run());
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
      statement->Bind(1, time)
          .Bind(2, cluster)
          .BindBlob(3, build_id)
          .Bind(4, *path)
          .Bind(5, cell.bytes)
          .Bind(6, cell.variance)
          .Bind(7, static_cast<int64_t>(cell.hosts));
      if (absl::Status status = statement->Run(); !status.ok()) return fail(status);
    }
  }
  for (const auto& [host_id, host] : sample.hosts) {
    for (const auto& [folded, cell] : LargestPaths(host, kHostPathsPerHour)) {
      absl::StatusOr<int64_t> path = PathId(folded);
      if (!path.ok()) return fail(path.status());
      host_row->Reset();
      host_row->Bind(1, hour)
          .Bind(2, host_id)
          .Bind(3, *path)
          .BindBlob(4, host.build_id)
          .Bind(5, cell.bytes)
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

absl::Status Store::PruneEpochs(int64_t now_millis, const absl::flat_hash_set<int64_t>& attached) {
  absl::StatusOr<Statement> old = db_.Prepare(
      "SELECT epoch_id FROM epochs e WHERE last_report_ms < ?1 AND (last_report_ms < ?2 "
      "OR epoch_id < (SELECT max(epoch_id) FROM epochs WHERE host_id = e.host_id))");
  if (!old.ok()) return old.status();
  std::vector<int64_t> doomed;
  absl::Status status =
      old->Bind(1, now_millis - kOldEpochMillis).Bind(2, now_millis - retention_.host_hour_millis).ForEachRow([&] {
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

std::vector<std::pair<std::string, FleetSample::Cell>> LargestPaths(const FleetSample::Host& host, size_t keep) {
  std::vector<std::pair<std::string, FleetSample::Cell>> paths(host.paths.begin(), host.paths.end());
  std::sort(paths.begin(), paths.end(), [](const auto& a, const auto& b) {
    return a.second.bytes != b.second.bytes ? a.second.bytes > b.second.bytes : a.first < b.first;
  });
  if (paths.size() <= keep) return paths;
  FleetSample::Cell other;
  for (size_t i = keep; i < paths.size(); ++i) {
    other.bytes += paths[i].second.bytes;
    other.variance += paths[i].second.variance;
  }
  other.hosts = 1;
  paths.resize(keep);
  paths.emplace_back(kOtherPaths, other);
  return paths;
}

}  // namespace apq
