#include "aggregator/store.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/sampling.h"
#include "common/stack_paths.h"
#include "page_tracker.h"

namespace apq {
namespace {

constexpr int kSchemaVersion = 1;
constexpr size_t kMaxCachedPaths = 1 << 20;

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
  PRIMARY KEY (epoch_id, series_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS symbol_tables (
  object TEXT NOT NULL,
  build_id BLOB NOT NULL,
  symbols BLOB NOT NULL,
  PRIMARY KEY (object, build_id)) WITHOUT ROWID;
)sql";

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  absl::StatusOr<Database> db = Database::Open(path);
  if (!db.ok()) return db.status();
  std::unique_ptr<Store> store(new Store(std::move(*db)));
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
  if (absl::Status status = db_.Exec(kSchema); !status.ok()) return status;
  return db_.Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion));
}

absl::StatusOr<int64_t> Store::OpenEpoch(const apq::v1::Hello& hello, EpochState* state) {
  if (hello.cluster().empty() || hello.host().empty()) {
    return absl::InvalidArgumentError("hello without cluster or host name");
  }
  if (absl::Status status = db_.Begin(); !status.ok()) return status;
  auto fail = [&](absl::Status status) {
    db_.Rollback().IgnoreError();
    return status;
  };
  absl::StatusOr<Statement> host = db_.Prepare(
      "INSERT INTO hosts (cluster, name) VALUES (?1, ?2) ON CONFLICT (cluster, name) DO UPDATE SET name = name "
      "RETURNING host_id");
  if (!host.ok()) return fail(host.status());
  host->Bind(1, hello.cluster()).Bind(2, hello.host());
  absl::StatusOr<bool> row = host->Step();
  if (!row.ok() || !*row) return fail(row.ok() ? absl::InternalError("no host id") : row.status());
  int64_t host_id = host->Int(0);
  host->Reset();  // a stepped RETURNING statement would hold the transaction open

  absl::StatusOr<Statement> epoch = db_.Prepare(
      "INSERT INTO epochs (host_id, boot_id, agent_instance, kernel_release, build_id, sample_bytes) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
      "ON CONFLICT (host_id, boot_id, agent_instance) DO UPDATE SET host_id = host_id RETURNING epoch_id");
  if (!epoch.ok()) return fail(epoch.status());
  epoch->Bind(1, host_id)
      .Bind(2, hello.epoch().boot_id())
      .Bind(3, static_cast<int64_t>(hello.epoch().agent_instance()))
      .Bind(4, hello.kernel().release())
      .BindBlob(5, hello.kernel().build_id())
      .Bind(6, static_cast<int64_t>(hello.sample_bytes()));
  row = epoch->Step();
  if (!row.ok() || !*row) return fail(row.ok() ? absl::InternalError("no epoch id") : row.status());
  int64_t epoch_id = epoch->Int(0);
  epoch->Reset();
  if (absl::Status status = db_.Commit(); !status.ok()) return fail(status);

  absl::StatusOr<EpochState> loaded = LoadEpoch(epoch_id);
  if (!loaded.ok()) return loaded.status();
  *state = std::move(*loaded);
  return epoch_id;
}

absl::StatusOr<EpochState> Store::LoadEpoch(int64_t epoch_id) {
  absl::StatusOr<Statement> last = db_.Prepare("SELECT last_sequence FROM epochs WHERE epoch_id = ?1");
  if (!last.ok()) return last.status();
  last->Bind(1, epoch_id);
  absl::StatusOr<bool> row = last->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("epoch ", epoch_id));
  auto last_sequence = static_cast<uint64_t>(last->Int(0));

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
      "SELECT series_id, key, pages_outstanding, pages_allocated, allocations FROM series WHERE epoch_id = ?1");
  if (!query.ok()) return query.status();
  status = query->Bind(1, epoch_id).ForEachRow([&] {
    EpochState::Series& s = series[static_cast<uint32_t>(query->Int(0))];
    if (!s.key.ParseFromString(query->Text(1))) {
      return absl::DataLossError(absl::StrCat("epoch ", epoch_id, ": stored series ", query->Int(0), " does not parse"));
    }
    s.pages_outstanding = query->Int(2);
    s.pages_allocated = static_cast<uint64_t>(query->Int(3));
    s.allocations = static_cast<uint64_t>(query->Int(4));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return EpochState(last_sequence, std::move(series), std::move(stacks), std::move(objects));
}

absl::Status Store::StoreReport(int64_t epoch_id, const EpochState& state, const apq::v1::Report& report) {
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
      "INSERT OR REPLACE INTO series (epoch_id, series_id, key, pages_outstanding, pages_allocated, allocations) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!series.ok()) return series.status();
  for (const apq::v1::SeriesDelta& delta : report.series()) {
    const EpochState::Series& now = state.series().at(delta.series_id());
    series->Reset();
    series->Bind(1, epoch_id)
        .Bind(2, static_cast<int64_t>(delta.series_id()))
        .BindBlob(3, now.key.SerializeAsString())
        .Bind(4, now.pages_outstanding)
        .Bind(5, static_cast<int64_t>(now.pages_allocated))
        .Bind(6, static_cast<int64_t>(now.allocations));
    if (absl::Status status = series->Run(); !status.ok()) return status;
  }
  absl::StatusOr<Statement> epoch = db_.Prepare(
      "UPDATE epochs SET last_sequence = ?2, last_report_ms = ?3, losses = ?4, coverage = ?5 WHERE epoch_id = ?1");
  if (!epoch.ok()) return epoch.status();
  epoch->Bind(1, epoch_id)
      .Bind(2, static_cast<int64_t>(report.sequence()))
      .Bind(3, report.unix_millis())
      .BindBlob(4, report.losses().SerializeAsString())
      .BindBlob(5, report.coverage().SerializeAsString());
  return epoch->Run();
}

absl::StatusOr<EpochState::Outcome> Store::ApplyReport(int64_t epoch_id, EpochState* state,
                                                       const apq::v1::Report& report) {
  absl::StatusOr<EpochState::Outcome> outcome = state->Apply(report);
  if (!outcome.ok() || *outcome != EpochState::Outcome::kApplied) return outcome;
  absl::Status status = db_.Begin();
  if (status.ok()) status = StoreReport(epoch_id, *state, report);
  if (status.ok()) status = db_.Commit();
  if (status.ok()) return outcome;
  db_.Rollback().IgnoreError();
  absl::StatusOr<EpochState> reloaded = LoadEpoch(epoch_id);
  if (reloaded.ok()) *state = std::move(*reloaded);
  return status;
}

absl::StatusOr<const KernelSymbols*> Store::SymbolsOf(const std::string& object, const std::string& build_id) {
  auto key = std::make_pair(object, build_id);
  auto cached = symbols_.find(key);
  if (cached != symbols_.end() && cached->second) return cached->second.get();
  absl::StatusOr<Statement> query = db_.Prepare("SELECT symbols FROM symbol_tables WHERE object = ?1 AND build_id = ?2");
  if (!query.ok()) return query.status();
  query->Bind(1, object).BindBlob(2, build_id);
  absl::StatusOr<bool> row = query->Step();
  if (!row.ok()) return row.status();
  if (!*row) return nullptr;
  apq::v1::SymbolTable table;
  if (!table.ParseFromString(query->Text(0))) {
    return absl::DataLossError(absl::StrCat("stored symbol table of ", object, " does not parse"));
  }
  std::vector<std::pair<uint64_t, std::string>> symbols;
  symbols.reserve(static_cast<size_t>(table.symbols_size()));
  for (const apq::v1::Symbol& s : table.symbols()) symbols.emplace_back(s.offset(), s.name());
  auto parsed = std::make_unique<KernelSymbols>(KernelSymbols::FromOffsets(symbols));
  const KernelSymbols* result = parsed.get();
  symbols_[key] = std::move(parsed);
  return result;
}

absl::StatusOr<std::vector<std::string>> Store::Symbolize(
    const apq::v1::StackDefinition& stack, const absl::flat_hash_map<uint32_t, apq::v1::CodeObject>& objects,
    bool* complete) {
  *complete = true;
  std::vector<std::string> names;
  for (const apq::v1::Frame& frame : stack.frames()) {
    auto object = objects.find(frame.object_id());
    if (object == objects.end()) {
      names.push_back("[unknown]");
      *complete = false;
      continue;
    }
    absl::StatusOr<const KernelSymbols*> symbols = SymbolsOf(object->second.name(), object->second.build_id());
    if (!symbols.ok()) return symbols.status();
    std::optional<ResolvedSymbol> symbol = *symbols ? (*symbols)->Resolve(frame.offset()) : std::nullopt;
    if (!*symbols) *complete = false;
    names.push_back(symbol ? std::string(symbol->name)
                           : absl::StrCat(object->second.name(), "+0x", absl::Hex(frame.offset())));
  }
  std::vector<std::string> path = CallPathRootFirst(names);
  if (path.empty()) path = {"[page allocator]"};
  return path;
}

absl::StatusOr<apq::v1::TopResponse> Store::Top(const apq::v1::TopRequest& request, int64_t now_millis,
                                                int64_t fresh_millis, const LiveEpochs& live) {
  if (request.at_unix_millis() != 0 || request.since_unix_millis() != 0) {
    return absl::UnimplementedError("--at and --since need the history this aggregator does not keep yet");
  }
  // The newest epoch of each host, if it reported recently.
  absl::StatusOr<Statement> epochs = db_.Prepare(
      "SELECT e.epoch_id, h.name, e.build_id, e.sample_bytes, e.kernel_release FROM epochs e JOIN hosts h USING (host_id) "
      "WHERE h.cluster = ?1 AND e.last_report_ms >= ?2 AND (?3 = '' OR h.name = ?3) AND (length(?4) = 0 OR e.build_id = ?4) "
      "AND e.epoch_id = (SELECT max(epoch_id) FROM epochs WHERE host_id = e.host_id)");
  if (!epochs.ok()) return epochs.status();
  epochs->Bind(1, request.cluster()).Bind(2, now_millis - fresh_millis).Bind(3, request.host()).BindBlob(4, request.build_id());
  struct Selected {
    int64_t epoch_id;
    std::string host, build_id;
    uint64_t sample_bytes;
  };
  std::vector<Selected> selected;
  absl::Status status = epochs->ForEachRow([&] {
    selected.push_back({epochs->Int(0), epochs->Text(1), epochs->Text(2), static_cast<uint64_t>(epochs->Int(3))});
    return absl::OkStatus();
  });
  if (!status.ok()) return status;

  struct Group {
    double bytes = 0, variance = 0;
    absl::flat_hash_set<std::string> hosts;
  };
  absl::flat_hash_map<std::string, Group> groups;
  for (const Selected& host : selected) {
    const EpochState* state = live ? live(host.epoch_id) : nullptr;
    std::optional<EpochState> loaded;
    if (!state) {
      absl::StatusOr<EpochState> from_file = LoadEpoch(host.epoch_id);
      if (!from_file.ok()) return from_file.status();
      loaded = std::move(*from_file);
      state = &*loaded;
    }
    absl::StatusOr<SamplingPlan> plan = SamplingPlan::ForSampleBytes(host.sample_bytes);
    if (!plan.ok()) continue;  // a hostile Hello; its data is not used
    absl::flat_hash_map<uint32_t, std::vector<std::string>> paths;
    for (const auto& [id, series] : state->series()) {
      if (series.pages_outstanding <= 0) continue;
      uint32_t stack_id = series.key.stack_id();
      if (stack_id == APQ_STACK_UNSAMPLED) continue;  // sampled stacks' estimates stand for these
      auto pages = static_cast<uint64_t>(series.pages_outstanding);
      int order = static_cast<int>(std::min<uint32_t>(series.key.order(), kNumOrders - 1));
      double bytes = plan->EstimateBytes(order, pages), variance = plan->EstimateVariance(order, pages);
      auto path = paths.find(stack_id);
      if (path == paths.end()) {
        std::vector<std::string> names = {"[stack unknown]"};
        auto cached = paths_.find({host.epoch_id, stack_id});
        auto stack = state->stacks().find(stack_id);
        if (cached != paths_.end()) {
          names = cached->second;
        } else if (stack != state->stacks().end()) {
          bool complete = false;
          absl::StatusOr<std::vector<std::string>> symbolized = Symbolize(stack->second, state->objects(), &complete);
          if (!symbolized.ok()) return symbolized.status();
          names = std::move(*symbolized);
          if (complete) {
            if (paths_.size() >= kMaxCachedPaths) paths_.clear();
            paths_.emplace(std::make_pair(host.epoch_id, stack_id), names);
          }
        }
        path = paths.emplace(stack_id, std::move(names)).first;
      }
      const std::vector<std::string>& frames = path->second;
      if (!request.frame_substring().empty() &&
          std::none_of(frames.begin(), frames.end(), [&](const std::string& f) {
            return f.find(request.frame_substring()) != std::string::npos;
          })) {
        continue;
      }
      std::string key;
      switch (request.group_by()) {
        case apq::v1::GROUP_BY_FUNCTION: key = frames.back(); break;
        case apq::v1::GROUP_BY_HOST: key = host.host; break;
        case apq::v1::GROUP_BY_PROCESS: key = series.key.comm(); break;
        case apq::v1::GROUP_BY_CGROUP: key = series.key.cgroup(); break;
        case apq::v1::GROUP_BY_BUILD: key = absl::BytesToHexString(host.build_id); break;
        default: key = FoldPath(frames); break;
      }
      Group& group = groups[key];
      group.bytes += bytes;
      group.variance += variance;
      group.hosts.insert(host.host);
    }
  }
  apq::v1::TopResponse response;
  response.set_hosts_selected(static_cast<uint32_t>(selected.size()));
  std::vector<std::pair<std::string, Group>> sorted(groups.begin(), groups.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second.bytes != b.second.bytes ? a.second.bytes > b.second.bytes : a.first < b.first;
  });
  for (const auto& [key, group] : sorted) {
    if (request.top() != 0 && static_cast<uint32_t>(response.entries_size()) >= request.top()) break;
    apq::v1::TopEntry* entry = response.add_entries();
    entry->set_key(key);
    entry->set_bytes_outstanding(group.bytes);
    entry->set_standard_error(std::sqrt(group.variance));
    entry->set_hosts(static_cast<uint32_t>(group.hosts.size()));
  }
  return response;
}

absl::StatusOr<apq::v1::HostsResponse> Store::Hosts(const apq::v1::HostsRequest& request) {
  absl::StatusOr<Statement> query = db_.Prepare(
      "SELECT h.name, e.kernel_release, e.build_id, e.last_report_ms, e.sample_bytes, e.losses, e.coverage "
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

absl::StatusOr<bool> Store::HasSymbolTable(const std::string& object, const std::string& build_id) {
  absl::StatusOr<Statement> query = db_.Prepare("SELECT 1 FROM symbol_tables WHERE object = ?1 AND build_id = ?2");
  if (!query.ok()) return query.status();
  query->Bind(1, object).BindBlob(2, build_id);
  return query->Step();
}

}  // namespace apq
