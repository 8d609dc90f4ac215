#include "aggregator/fleet.h"

#include <cmath>
#include <optional>

#include "aggregator/epoch_rows.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/files.h"
#include "aggregator/query_diff.h"
#include "aggregator/query_explain.h"
#include "aggregator/query_now.h"
#include "common/status_macros.h"

namespace apq {
namespace {

constexpr size_t kMaxNameBytes = 256;
constexpr int kMaxSymbols = 1 << 21;

// A host as the store keeps it, as apq hosts shows it. A stored message that
// no longer parses shows empty, as one never sent does.
apq::v1::HostInfo HostInfoOf(const Store::HostRow& row) {
  apq::v1::HostInfo host;
  host.set_host(row.name);
  host.mutable_kernel()->set_release(row.kernel_release);
  host.mutable_kernel()->set_build_id(row.build_id);
  host.set_last_report_unix_millis(row.last_report_ms);
  host.set_sample_bytes(row.sample_bytes);
  if (!host.mutable_losses()->ParseFromString(row.losses)) host.clear_losses();
  if (!host.mutable_coverage()->ParseFromString(row.coverage)) host.clear_coverage();
  apq::v1::HostMemory memory;
  if (!row.memory.empty() && memory.ParseFromString(row.memory)) {
    host.set_classified_unix_millis(memory.classified_unix_millis());
  }
  return host;
}

apq::v1::TopResponse TopResponseOf(const Store::HistoryTop& top) {
  apq::v1::TopResponse response;
  for (const Store::HistoryTop::Row& row : top.rows) {
    apq::v1::TopEntry* entry = response.add_entries();
    entry->set_key(row.key);
    entry->set_bytes_outstanding(row.bytes);
    entry->set_standard_error(std::sqrt(row.variance));
    entry->set_hosts(row.hosts);
  }
  response.set_hosts_selected(top.hosts_selected);
  response.set_first_sample_unix_millis(top.first_ms);
  response.set_last_sample_unix_millis(top.last_ms);
  response.set_resolution_millis(top.resolution_ms);
  return response;
}

}  // namespace

absl::Status ValidateHello(const apq::v1::Hello& hello) {
  for (const std::string* field : {&hello.cluster(), &hello.host(), &hello.epoch().boot_id(), &hello.kernel().release(),
                                   &hello.kernel().build_id()}) {
    if (field->size() > kMaxNameBytes) return absl::InvalidArgumentError("hello field longer than 256 bytes");
  }
  if (hello.cluster().empty() || hello.host().empty())
    return absl::InvalidArgumentError("hello needs cluster and host");
  return absl::OkStatus();
}

Fleet::Fleet(std::unique_ptr<Store> store, int64_t fresh_millis, Clock clock, ClusterLimits limits)
    : store_(std::move(store)),
      namer_([this](const SymbolTableKey& key) {
        absl::MutexLock lock(&reader_mu_);
        return store_->ReadSymbolTable(key);
      }),
      fresh_millis_(fresh_millis),
      limits_(limits),
      clock_(std::move(clock)) {}

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::Start(std::unique_ptr<Store> store, int64_t fresh_millis, Clock clock,
                                                    ClusterLimits limits) {
  std::unique_ptr<Fleet> fleet(new Fleet(std::move(store), fresh_millis, std::move(clock), limits));
  {
    absl::MutexLock store_lock(&fleet->store_mu_);
    absl::StatusOr<std::vector<Store::EpochInfo>> recent = fleet->store_->RecentEpochs(fleet->clock_() - fresh_millis);
    if (!recent.ok()) return recent.status();
    for (Store::EpochInfo& info : *recent) {
      absl::StatusOr<EpochState> state = LoadEpochState(*fleet->store_, info.epoch_id);
      if (!state.ok()) return state.status();
      absl::MutexLock lock(&fleet->state_mu_);
      Live& live = fleet->epochs_[info.epoch_id];
      live.stored_sequence = state->last_sequence();
      live.epoch = {info.epoch_id,
                    info.host_id,
                    std::move(info.cluster),
                    std::move(info.host),
                    std::move(info.build_id),
                    info.sample_bytes,
                    info.last_report_ms,
                    std::move(*state)};
      fleet->AddLive(live, info.epoch_id);
    }
  }
  {
    absl::MutexLock store_lock(&fleet->store_mu_);
    APQ_ASSIGN_OR_RETURN(std::vector<SymbolTableKey> tables, fleet->store_->SymbolTables());
    absl::MutexLock lock(&fleet->symbols_mu_);
    fleet->tables_stored_.insert(tables.begin(), tables.end());
  }
  fleet->committer_ = std::thread([f = fleet.get()] { f->CommitLoop(); });
  return fleet;
}

Fleet::~Fleet() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  if (committer_.joinable()) committer_.join();
}

absl::StatusOr<int64_t> Fleet::Attach(const apq::v1::Hello& hello, uint64_t* last_sequence) {
  APQ_RETURN_IF_ERROR(ValidateHello(hello));
  absl::MutexLock store_lock(&store_mu_);  // attaches one at a time: the host count below stays true
  {
    absl::MutexLock lock(&state_mu_);
    auto cluster = clusters_.find(hello.cluster());
    const size_t hosts = cluster == clusters_.end() ? 0 : cluster->second.hosts.size();
    if (hosts >= limits_.hosts && (cluster == clusters_.end() || !cluster->second.hosts.contains(hello.host()))) {
      refusals_.Count(Refusal::kClusterHosts);
      return absl::ResourceExhaustedError(absl::StrCat("cluster '", hello.cluster(), "' already has ", hosts,
                                                       " hosts, the aggregator's limit (--max-hosts-per-cluster)"));
    }
  }
  EpochState loaded;
  absl::StatusOr<Store::EpochInfo> info = OpenEpochState(*store_, hello, &loaded);
  if (!info.ok()) return info.status();
  absl::MutexLock lock(&state_mu_);
  auto [live, opened] = epochs_.try_emplace(info->epoch_id);
  if (opened) {  // otherwise memory already holds it, as new as the file or newer
    live->second.stored_sequence = loaded.last_sequence();
    live->second.epoch = {info->epoch_id, info->host_id,      info->cluster,        info->host,
                          info->build_id, info->sample_bytes, info->last_report_ms, std::move(loaded)};
    AddLive(live->second, info->epoch_id);
  }
  ++live->second.streams;
  *last_sequence = live->second.stored_sequence;  // reports applied but not yet stored come again
  return info->epoch_id;
}

void Fleet::AddLive(Live& live, int64_t epoch_id) {
  int64_t& newest = newest_epoch_[live.epoch.host_id];
  newest = std::max(newest, epoch_id);
  clusters_[live.epoch.cluster].hosts.insert(live.epoch.host);
  Restack(live.epoch.cluster, 0, live.epoch.state.stacks().size());
}

void Fleet::Restack(const std::string& cluster, size_t before, size_t after) {
  size_t& stacks = clusters_[cluster].stacks;
  stacks = stacks - std::min(stacks, before) + after;
}

void Fleet::ForgetLive(const Live& live, int64_t epoch_id) {
  Restack(live.epoch.cluster, live.epoch.state.stacks().size(), 0);
  ClusterLoad& load = clusters_[live.epoch.cluster];
  if (auto newest = newest_epoch_.find(live.epoch.host_id);
      newest != newest_epoch_.end() && newest->second == epoch_id) {
    newest_epoch_.erase(newest);
    load.hosts.erase(live.epoch.host);
  }
  if (load.hosts.empty() && load.stacks == 0) clusters_.erase(live.epoch.cluster);
}

absl::Status Fleet::CheckClusterStacks(const HostEpoch& epoch, const apq::v1::Report& report) {
  const size_t held = clusters_[epoch.cluster].stacks;
  const size_t replaced = report.full_snapshot() ? epoch.state.stacks().size() : 0;
  const size_t would_hold = held - std::min(held, replaced) + report.stacks_size();
  if (would_hold <= limits_.stacks) return absl::OkStatus();
  refusals_.Count(Refusal::kClusterStacks);
  return absl::ResourceExhaustedError(absl::StrCat("cluster '", epoch.cluster, "' would hold ", would_hold,
                                                   " stacks, over the aggregator's limit (--max-stacks-per-cluster)"));
}

void Fleet::Detach(int64_t epoch_id) {
  absl::MutexLock lock(&state_mu_);
  auto live = epochs_.find(epoch_id);
  if (live != epochs_.end()) --live->second.streams;  // kept while fresh: it is part of "now"
  // Uploads asked of this epoch will not come now: the next stream that needs them is asked.
  absl::MutexLock symbols_lock(&symbols_mu_);
  for (auto upload = uploads_.begin(); upload != uploads_.end();) {
    auto current = upload++;
    current->second.asked.erase(epoch_id);
    if (current->second.asked.empty()) uploads_.erase(current);
  }
}

void Fleet::ApplyThen(int64_t epoch_id, apq::v1::Report report, AppliedCallback done) {
  absl::StatusOr<EpochState::Outcome> outcome;
  {
    absl::MutexLock lock(&state_mu_);
    auto live = epochs_.find(epoch_id);
    if (live == epochs_.end()) {
      outcome = absl::FailedPreconditionError("epoch not attached");
    } else {
      HostEpoch& epoch = live->second.epoch;
      const size_t stacks_before = epoch.state.stacks().size();
      // Only a report that would be applied can grow the cluster: a
      // duplicate or a gap gets its own answer.
      const bool to_apply = report.full_snapshot() || report.sequence() == epoch.state.last_sequence() + 1;
      absl::Status room = to_apply ? CheckClusterStacks(epoch, report) : absl::OkStatus();
      if (!room.ok()) {
        outcome = room;
      } else {
        outcome = epoch.state.Apply(report);
        Restack(epoch.cluster, stacks_before, epoch.state.stacks().size());
      }
      const bool applied = outcome.ok() && *outcome == EpochState::Outcome::kApplied;
      const bool unstored_duplicate = outcome.ok() && *outcome == EpochState::Outcome::kDuplicate &&
                                      report.sequence() > live->second.stored_sequence;
      if (applied || unstored_duplicate) {
        auto pending = std::make_unique<Pending>();
        pending->sequence = report.sequence();
        if (applied) {
          epoch.last_report_ms = clock_();
          pending->write = WriteOf(epoch_id, epoch.state, report, epoch.last_report_ms);
        } else {
          pending->duplicate_of_epoch = epoch_id;
        }
        pending->done = std::move(done);
        absl::MutexLock queue_lock(&queue_mu_);  // queued in the order applied
        queue_.push_back(std::move(pending));
        return;
      }
    }
  }
  done(std::move(outcome));  // nothing to store: answered at once, outside the locks
}

void Fleet::CommitLoop() {
  while (true) {
    std::vector<std::unique_ptr<Pending>> batch;
    {
      absl::MutexLock queue_lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(
          +[](Fleet* fleet) ABSL_NO_THREAD_SAFETY_ANALYSIS { return fleet->stopping_ || !fleet->queue_.empty(); },
          this));
      if (queue_.empty()) return;  // stopping, and everything queued is committed
      batch.swap(queue_);
    }
    std::vector<const EpochWrite*> writes;
    writes.reserve(batch.size());
    for (const auto& pending : batch) {
      if (pending->write) writes.push_back(&*pending->write);
    }
    const absl::Status status = Commit(writes);
    for (const auto& pending : batch) Answer(*pending, status);
  }
}

absl::Status Fleet::Commit(const std::vector<const EpochWrite*>& writes) {
  absl::MutexLock store_lock(&store_mu_);
  const absl::Status status = writes.empty() ? absl::OkStatus() : store_->CommitReports(writes);
  if (status.ok()) {
    reports_stored_ += writes.size();
    absl::MutexLock lock(&state_mu_);
    for (const EpochWrite* write : writes) {
      auto live = epochs_.find(write->epoch_id);
      if (live != epochs_.end()) live->second.stored_sequence = std::max(live->second.stored_sequence, write->sequence);
    }
    return status;
  }
  ++commits_failed_;
  APQ_LOG() << "storing " << writes.size() << " reports failed (their streams end; agents "
            << "resend): " << status.message();
  // Memory ran ahead of the file: take the file's state back, so the
  // agents' resends apply again.
  absl::flat_hash_set<int64_t> reloaded;
  for (const EpochWrite* write : writes) {
    if (!reloaded.insert(write->epoch_id).second) continue;
    absl::StatusOr<EpochState> state = LoadEpochState(*store_, write->epoch_id);
    absl::MutexLock lock(&state_mu_);
    auto live = epochs_.find(write->epoch_id);
    if (live == epochs_.end()) continue;
    // Unreadable: start empty, and the agent is asked for a snapshot.
    const size_t stacks_before = live->second.epoch.state.stacks().size();
    live->second.epoch.state = state.ok() ? std::move(*state) : EpochState();
    Restack(live->second.epoch.cluster, stacks_before, live->second.epoch.state.stacks().size());
    live->second.stored_sequence = live->second.epoch.state.last_sequence();
  }
  return status;
}

void Fleet::Answer(Pending& pending, const absl::Status& commit) {
  if (pending.duplicate_of_epoch == 0) {
    pending.done(commit.ok() ? absl::StatusOr<EpochState::Outcome>(EpochState::Outcome::kApplied) : commit);
    return;
  }
  bool stored;
  {
    absl::MutexLock lock(&state_mu_);
    auto live = epochs_.find(pending.duplicate_of_epoch);
    stored = live != epochs_.end() && live->second.stored_sequence >= pending.sequence;
  }
  if (stored) {
    pending.done(EpochState::Outcome::kDuplicate);
  } else {
    pending.done(
        absl::UnavailableError(absl::StrCat("report ", pending.sequence, " could not be stored; send it again")));
  }
}

std::optional<SymbolTableKey> Fleet::TableKeyOf(int64_t epoch_id, const std::string& object,
                                                const std::string& build_id) {
  absl::MutexLock lock(&state_mu_);
  auto live = epochs_.find(epoch_id);
  if (live == epochs_.end()) return std::nullopt;
  return SymbolTableKey{live->second.epoch.cluster, object, build_id};
}

Fleet::SymbolNeed Fleet::NeedSymbols(const std::string& object, const std::string& build_id, int64_t epoch_id) {
  const int64_t now = clock_();
  std::optional<SymbolTableKey> key = TableKeyOf(epoch_id, object, build_id);
  if (!key) return SymbolNeed::kAskedElsewhere;  // an epoch forgotten while its stream ends: it uploads nothing
  absl::MutexLock lock(&symbols_mu_);
  if (tables_stored_.contains(*key)) return SymbolNeed::kStored;
  Upload& upload = uploads_[*key];
  if (!upload.asked.empty() && now - upload.asked_millis < kSymbolUploadMillis) return SymbolNeed::kAskedElsewhere;
  upload.asked.insert(epoch_id);
  upload.asked_millis = now;
  return SymbolNeed::kAskThisStream;
}

absl::StatusOr<bool> Fleet::PutSymbols(int64_t epoch_id, const apq::v1::SymbolTable& table) {
  if (table.object().size() > kMaxNameBytes || table.build_id().size() > kMaxNameBytes ||
      table.symbols_size() > kMaxSymbols) {
    return absl::InvalidArgumentError("symbol table over its size limits");
  }
  std::optional<SymbolTableKey> key = TableKeyOf(epoch_id, table.object(), table.build_id());
  if (!key) return false;
  {
    absl::MutexLock lock(&symbols_mu_);
    auto upload = uploads_.find(*key);
    if (upload == uploads_.end() || !upload->second.asked.contains(epoch_id)) return false;
  }
  absl::MutexLock store_lock(&store_mu_);
  APQ_RETURN_IF_ERROR(store_->PutSymbolTable(key->cluster, table));
  absl::MutexLock lock(&state_mu_);
  namer_.Add(key->cluster, table);
  absl::MutexLock symbols_lock(&symbols_mu_);
  uploads_.erase(*key);
  tables_stored_.insert(*std::move(key));
  return true;
}

std::vector<const HostEpoch*> Fleet::FreshEpochs(const apq::v1::TopRequest& request, int64_t now_millis) {
  std::vector<const HostEpoch*> selected;
  for (const auto& [id, live] : epochs_) {
    const HostEpoch& epoch = live.epoch;
    if (epoch.last_report_ms < now_millis - fresh_millis_ || newest_epoch_[epoch.host_id] != id) continue;
    if (!request.cluster().empty() && epoch.cluster != request.cluster()) continue;
    if (!request.host().empty() && epoch.host != request.host()) continue;
    if (!request.build_id().empty() && epoch.build_id != request.build_id()) continue;
    selected.push_back(&epoch);
  }
  return selected;
}

absl::StatusOr<apq::v1::TopResponse> Fleet::Top(const apq::v1::TopRequest& request) {
  if (request.cluster().empty()) return absl::InvalidArgumentError("top needs a cluster");
  if (request.at_unix_millis() != 0 || request.since_unix_millis() != 0) {
    if (request.with_allocated()) {
      return absl::InvalidArgumentError(
          "history keeps outstanding bytes only: allocations (pprof) answer for now only");
    }
    if (request.pid() != 0 || request.with_processes()) {
      return absl::InvalidArgumentError("history keeps no processes: --pid and --processes answer for now only");
    }
    if (request.class_filter() != apq::v1::CLASS_FILTER_ALL) {
      return absl::InvalidArgumentError(
          "history keeps every page class together: --class hidden or visible answers for now only (use --class all "
          "with --at or --since)");
    }
    const Store::HistoryQuery query{request.cluster(),           request.host(),     request.build_id(),
                                    request.frame_substring(),   request.group_by(), request.at_unix_millis(),
                                    request.since_unix_millis(), request.top()};
    absl::MutexLock lock(&reader_mu_);
    APQ_ASSIGN_OR_RETURN(const Store::HistoryTop top, store_->TopFromHistory(query, clock_()));
    return TopResponseOf(top);
  }
  absl::MutexLock lock(&state_mu_);
  return TopOfEpochs(FreshEpochs(request, clock_()), request, &namer_);
}

absl::StatusOr<apq::v1::DiffResponse> Fleet::Diff(const apq::v1::DiffRequest& request) {
  if (request.cluster().empty()) return absl::InvalidArgumentError("diff needs a cluster");
  const int64_t now = clock_();
  int64_t before_resolution = 0, after_resolution = 0;
  absl::MutexLock lock(&reader_mu_);
  absl::StatusOr<DiffSide> before =
      store_->HistoryForDiff(request.cluster(), request.before(), request.group_by(), now, &before_resolution);
  if (!before.ok()) return before.status();
  absl::StatusOr<DiffSide> after =
      store_->HistoryForDiff(request.cluster(), request.after(), request.group_by(), now, &after_resolution);
  if (!after.ok()) return after.status();
  apq::v1::DiffResponse response = DiffOf(*before, *after, request.top());
  response.set_resolution_millis(std::max(before_resolution, after_resolution));
  return response;
}

absl::StatusOr<apq::v1::ExplainResponse> Fleet::Explain(const apq::v1::ExplainRequest& request) {
  if (request.cluster().empty()) return absl::InvalidArgumentError("explain needs a cluster");
  apq::v1::TopRequest selection;
  selection.set_cluster(request.cluster());
  selection.set_host(request.host());
  absl::MutexLock lock(&state_mu_);
  return ExplainEpochs(FreshEpochs(selection, clock_()), request, &namer_);
}

absl::StatusOr<apq::v1::HostsResponse> Fleet::Hosts(const apq::v1::HostsRequest& request) {
  std::vector<Store::HostRow> rows;
  {
    absl::MutexLock lock(&reader_mu_);
    APQ_ASSIGN_OR_RETURN(rows, store_->Hosts(request.cluster()));
  }
  apq::v1::HostsResponse response;
  for (const Store::HostRow& row : rows) *response.add_hosts() = HostInfoOf(row);
  return response;
}

absl::StatusOr<apq::v1::ClustersResponse> Fleet::Clusters(const std::function<bool(const std::string&)>& may_read) {
  std::vector<Store::ClusterRow> rows;
  {
    absl::MutexLock lock(&reader_mu_);
    APQ_ASSIGN_OR_RETURN(rows, store_->Clusters(clock_() - fresh_millis_));
  }
  apq::v1::ClustersResponse response;
  for (const Store::ClusterRow& row : rows) {
    if (!may_read(row.name)) continue;
    apq::v1::ClusterInfo* cluster = response.add_clusters();
    cluster->set_name(row.name);
    cluster->set_hosts(row.hosts);
    cluster->set_hosts_reporting(row.hosts_reporting);
    cluster->set_newest_report_unix_millis(row.newest_report_ms);
  }
  return response;
}

Fleet::Stats Fleet::GetStats() {
  Stats stats;
  stats.reports_stored = reports_stored_;
  stats.commits_failed = commits_failed_;
  {
    absl::MutexLock lock(&symbols_mu_);
    stats.symbol_tables = tables_stored_.size();
  }
  const int64_t now = clock_();
  absl::MutexLock lock(&state_mu_);
  for (const auto& [id, live] : epochs_) {
    const HostEpoch& epoch = live.epoch;
    if (newest_epoch_[epoch.host_id] != id) continue;
    stats.hosts.push_back({epoch.cluster, epoch.host, absl::BytesToHexString(epoch.build_id), epoch.last_report_ms,
                           live.stored_sequence, live.streams, epoch.last_report_ms >= now - fresh_millis_});
  }
  return stats;
}

absl::Status Fleet::Sample() {
  const int64_t now = clock_();
  absl::StatusOr<FleetSample> sample;
  {
    absl::MutexLock lock(&state_mu_);
    for (auto live = epochs_.begin(); live != epochs_.end();) {
      const HostEpoch& epoch = live->second.epoch;
      bool stale = epoch.last_report_ms < now - fresh_millis_ || newest_epoch_[epoch.host_id] != live->first;
      if (stale && live->second.streams == 0) {
        ForgetLive(live->second, live->first);
        epochs_.erase(live++);
      } else {
        ++live;
      }
    }
    sample = SampleFleet(FreshEpochs(apq::v1::TopRequest(), now), &namer_, now / 60'000);
  }
  if (!sample.ok()) return sample.status();
  absl::MutexLock store_lock(&store_mu_);
  APQ_RETURN_IF_ERROR(store_->WriteSample(*sample));
  // Taken under store_mu_, which Attach holds from creating an epoch's row
  // until the epoch is in memory: an epoch attached meanwhile is spared.
  absl::flat_hash_set<int64_t> in_memory;
  {
    absl::MutexLock lock(&state_mu_);
    for (const auto& [id, live] : epochs_) in_memory.insert(id);
  }
  return store_->PruneEpochs(now, in_memory);
}

}  // namespace apq
