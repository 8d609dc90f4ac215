#include "aggregator/services.h"

#include <chrono>
#include <deque>
#include <optional>
#include <iostream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace apq {
namespace {

constexpr size_t kMaxNameBytes = 256;
constexpr int kMaxSymbols = 1 << 21;
constexpr size_t kMaxWantedTables = 4096;  // a kernel and its modules, with room

absl::Status ValidateHello(const apq::v1::Hello& hello) {
  for (const std::string* field : {&hello.cluster(), &hello.host(), &hello.epoch().boot_id(), &hello.kernel().release(),
                                   &hello.kernel().build_id()}) {
    if (field->size() > kMaxNameBytes) return absl::InvalidArgumentError("hello field longer than 256 bytes");
  }
  if (hello.cluster().empty() || hello.host().empty()) return absl::InvalidArgumentError("hello needs cluster and host");
  return absl::OkStatus();
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& status) {
  return status.ok() ? grpc::Status::OK
                     : grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

Fleet::Fleet(std::unique_ptr<Store> store, int64_t fresh_millis, Clock clock)
    : store_(std::move(store)),
      namer_([this](const std::string& object, const std::string& build_id) {
        absl::MutexLock lock(&reader_mu_);
        return store_->ReadSymbolTable(object, build_id);
      }),
      fresh_millis_(fresh_millis),
      clock_(std::move(clock)) {}

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::Start(std::unique_ptr<Store> store, int64_t fresh_millis,
                                                    Clock clock) {
  std::unique_ptr<Fleet> fleet(new Fleet(std::move(store), fresh_millis, std::move(clock)));
  {
    absl::MutexLock store_lock(&fleet->store_mu_);
    absl::StatusOr<std::vector<Store::EpochInfo>> recent = fleet->store_->RecentEpochs(fleet->clock_() - fresh_millis);
    if (!recent.ok()) return recent.status();
    for (Store::EpochInfo& info : *recent) {
      absl::StatusOr<EpochState> state = fleet->store_->LoadEpoch(info.epoch_id);
      if (!state.ok()) return state.status();
      absl::MutexLock lock(&fleet->state_mu_);
      fleet->newest_epoch_[info.host_id] = info.epoch_id;
      Live& live = fleet->epochs_[info.epoch_id];
      live.stored_sequence = state->last_sequence();
      live.epoch = {info.epoch_id, info.host_id, std::move(info.cluster), std::move(info.host),
                    std::move(info.build_id), info.sample_bytes, info.last_report_ms, std::move(*state)};
    }
  }
  {
    absl::MutexLock store_lock(&fleet->store_mu_);
    absl::StatusOr<std::vector<std::pair<std::string, std::string>>> tables = fleet->store_->SymbolTables();
    if (!tables.ok()) return tables.status();
    absl::MutexLock lock(&fleet->symbols_mu_);
    fleet->tables_stored_.insert(tables->begin(), tables->end());
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
  if (absl::Status status = ValidateHello(hello); !status.ok()) return status;
  absl::MutexLock store_lock(&store_mu_);
  EpochState loaded;
  absl::StatusOr<Store::EpochInfo> info = store_->OpenEpoch(hello, &loaded);
  if (!info.ok()) return info.status();
  absl::MutexLock lock(&state_mu_);
  auto [live, opened] = epochs_.try_emplace(info->epoch_id);
  if (opened) {  // otherwise memory already holds it, as new as the file or newer
    live->second.stored_sequence = loaded.last_sequence();
    live->second.epoch = {info->epoch_id, info->host_id, info->cluster, info->host, info->build_id,
                          info->sample_bytes, info->last_report_ms, std::move(loaded)};
  }
  ++live->second.streams;
  int64_t& newest = newest_epoch_[info->host_id];
  newest = std::max(newest, info->epoch_id);
  *last_sequence = live->second.stored_sequence;  // reports applied but not yet stored come again
  return info->epoch_id;
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
  auto pending = std::make_unique<Pending>();
  pending->report = std::move(report);
  absl::StatusOr<EpochState::Outcome> outcome;
  {
    absl::MutexLock lock(&state_mu_);
    auto live = epochs_.find(epoch_id);
    if (live == epochs_.end()) {
      outcome = absl::FailedPreconditionError("epoch not attached");
    } else {
      HostEpoch& epoch = live->second.epoch;
      outcome = epoch.state.Apply(pending->report);
      const bool applied = outcome.ok() && *outcome == EpochState::Outcome::kApplied;
      const bool unstored_duplicate = outcome.ok() && *outcome == EpochState::Outcome::kDuplicate &&
                                      pending->report.sequence() > live->second.stored_sequence;
      if (applied || unstored_duplicate) {
        if (applied) {
          epoch.last_report_ms = clock_();
          pending->write = Store::Applied(epoch_id, epoch.state, pending->report, epoch.last_report_ms);
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
    std::vector<const Store::AppliedReport*> writes;
    writes.reserve(batch.size());
    for (const auto& pending : batch) {
      if (pending->write.epoch_id != 0) writes.push_back(&pending->write);
    }
    absl::Status status;
    {
      absl::MutexLock store_lock(&store_mu_);
      if (!writes.empty()) status = store_->CommitReports(writes);
      absl::flat_hash_set<int64_t> reloaded;
      if (!status.ok()) {
        std::cerr << "apq-aggregator: storing " << writes.size() << " reports failed (their streams end; agents "
                  << "resend): " << status.message() << std::endl;
        // Memory ran ahead of the file: take the file's state back, so the
        // agents' resends apply again.
        for (const Store::AppliedReport* write : writes) {
          if (!reloaded.insert(write->epoch_id).second) continue;
          absl::StatusOr<EpochState> state = store_->LoadEpoch(write->epoch_id);
          absl::MutexLock lock(&state_mu_);
          auto live = epochs_.find(write->epoch_id);
          if (live == epochs_.end()) continue;
          // Unreadable: start empty, and the agent is asked for a snapshot.
          live->second.epoch.state = state.ok() ? std::move(*state) : EpochState();
          live->second.stored_sequence = live->second.epoch.state.last_sequence();
        }
      } else {
        absl::MutexLock lock(&state_mu_);
        for (const Store::AppliedReport* write : writes) {
          auto live = epochs_.find(write->epoch_id);
          if (live != epochs_.end()) {
            live->second.stored_sequence = std::max(live->second.stored_sequence, write->report->sequence());
          }
        }
      }
    }
    for (const auto& pending : batch) {
      if (pending->duplicate_of_epoch != 0) {
        bool stored;
        {
          absl::MutexLock lock(&state_mu_);
          auto live = epochs_.find(pending->duplicate_of_epoch);
          stored = live != epochs_.end() && live->second.stored_sequence >= pending->report.sequence();
        }
        if (stored) {
          pending->done(EpochState::Outcome::kDuplicate);
        } else {
          pending->done(absl::UnavailableError(
              absl::StrCat("report ", pending->report.sequence(), " could not be stored; send it again")));
        }
      } else if (status.ok()) {
        pending->done(EpochState::Outcome::kApplied);
      } else {
        pending->done(status);
      }
    }
  }
}

Fleet::SymbolNeed Fleet::NeedSymbols(const std::string& object, const std::string& build_id, int64_t epoch_id) {
  const int64_t now = clock_();
  absl::MutexLock lock(&symbols_mu_);
  ObjectBuild key{object, build_id};
  if (tables_stored_.contains(key)) return SymbolNeed::kStored;
  Upload& upload = uploads_[key];
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
  ObjectBuild key{table.object(), table.build_id()};
  {
    absl::MutexLock lock(&symbols_mu_);
    auto upload = uploads_.find(key);
    if (upload == uploads_.end() || !upload->second.asked.contains(epoch_id)) return false;
  }
  absl::MutexLock store_lock(&store_mu_);
  if (absl::Status status = store_->PutSymbolTable(table); !status.ok()) return status;
  absl::MutexLock lock(&state_mu_);
  namer_.Add(table);
  absl::MutexLock symbols_lock(&symbols_mu_);
  uploads_.erase(key);
  tables_stored_.insert(std::move(key));
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
    if (request.class_filter() != apq::v1::CLASS_FILTER_ALL) {
      return absl::InvalidArgumentError(
          "history keeps every page class together: --class hidden or visible answers for now only (use --class all "
          "with --at or --since)");
    }
    absl::MutexLock lock(&reader_mu_);
    return store_->TopFromHistory(request, clock_());
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
  absl::MutexLock lock(&reader_mu_);
  return store_->Hosts(request);
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
        if (newest_epoch_[epoch.host_id] == live->first) newest_epoch_.erase(epoch.host_id);
        epochs_.erase(live++);
      } else {
        ++live;
      }
    }
    sample = SampleFleet(FreshEpochs(apq::v1::TopRequest(), now), &namer_, now / 60'000);
  }
  if (!sample.ok()) return sample.status();
  absl::MutexLock store_lock(&store_mu_);
  if (absl::Status status = store_->WriteSample(*sample); !status.ok()) return status;
  // Taken under store_mu_, which Attach holds from creating an epoch's row
  // until the epoch is in memory: an epoch attached meanwhile is spared.
  absl::flat_hash_set<int64_t> in_memory;
  {
    absl::MutexLock lock(&state_mu_);
    for (const auto& [id, live] : epochs_) in_memory.insert(id);
  }
  return store_->PruneEpochs(now, in_memory);
}

namespace {

// One agent's stream: a Hello, then reports (and symbol tables when asked),
// one report at a time: the next is read once the previous one's outcome is
// known (after its commit), so acks go out in order and each means stored.
class IngestReactor final : public grpc::ServerBidiReactor<apq::v1::AgentMessage, apq::v1::AggregatorMessage> {
 public:
  explicit IngestReactor(Fleet* fleet) : fleet_(fleet) { StartRead(&in_); }

  void OnReadDone(bool ok) override {
    if (!ok) return End(grpc::Status::OK);  // the agent closed the stream, or went away
    if (epoch_ == 0) return OnHello();
    if (in_.has_symbols()) {
      absl::StatusOr<bool> stored = fleet_->PutSymbols(epoch_, in_.symbols());
      if (!stored.ok()) return End(ToGrpc(stored.status()));
      return StartRead(&in_);
    }
    if (!in_.has_report()) return End(grpc::Status(grpc::INVALID_ARGUMENT, "expected a report or symbols"));
    for (const apq::v1::CodeObject& object : in_.report().objects()) {
      if (object.name() != "[unknown]" && !object.build_id().empty() && wanted_.size() < kMaxWantedTables) {
        wanted_.emplace(object.name(), object.build_id());
      }
    }
    const uint64_t sequence = in_.report().sequence();
    {
      absl::MutexLock lock(&mu_);
      ++pending_;
    }
    fleet_->ApplyThen(epoch_, std::move(*in_.mutable_report()),
                      [this, sequence](absl::StatusOr<EpochState::Outcome> outcome) { OnApplied(sequence, outcome); });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    out_.pop_front();
    if (!ok) broken_ = true;  // the agent is gone: the next read fails and ends the stream
    if (!out_.empty() && !broken_) {
      StartWrite(&out_.front());
      return;
    }
    out_.clear();
    writing_ = false;
    if (finish_) Finish(*finish_);
  }

  void OnDone() override {
    if (epoch_ != 0) fleet_->Detach(epoch_);
    bool last;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      last = pending_ == 0;
    }
    if (last) delete this;
  }

 private:
  void OnHello() {
    if (!in_.has_hello()) return End(grpc::Status(grpc::INVALID_ARGUMENT, "the first message must be a hello"));
    uint64_t last_sequence = 0;
    absl::StatusOr<int64_t> epoch = fleet_->Attach(in_.hello(), &last_sequence);
    if (!epoch.ok()) return End(ToGrpc(epoch.status()));
    epoch_ = *epoch;
    if (!in_.hello().kernel().build_id().empty()) wanted_.emplace("vmlinux", in_.hello().kernel().build_id());
    apq::v1::AggregatorMessage reply;
    reply.mutable_ack()->set_sequence(last_sequence);  // what is stored already need not come again
    Send(std::move(reply));
    AskForSymbols();
    StartRead(&in_);
  }

  // On the committer thread, or at once for what needs no commit.
  void OnApplied(uint64_t sequence, const absl::StatusOr<EpochState::Outcome>& outcome) {
    bool ended, last;
    {
      absl::MutexLock lock(&mu_);
      --pending_;
      ended = done_;
      last = pending_ == 0;
    }
    if (ended) {
      if (last) delete this;
      return;
    }
    if (!outcome.ok()) return End(ToGrpc(outcome.status()));
    apq::v1::AggregatorMessage answer;
    if (*outcome == EpochState::Outcome::kNeedSnapshot) {
      answer.mutable_need_snapshot();
    } else {
      answer.mutable_ack()->set_sequence(sequence);
    }
    Send(std::move(answer));
    AskForSymbols();
    StartRead(&in_);
  }

  // Asks this stream for the tables its frames need that no other stream
  // is uploading (see Fleet::NeedSymbols).
  void AskForSymbols() {
    for (auto want = wanted_.begin(); want != wanted_.end();) {
      auto current = want++;
      Fleet::SymbolNeed need = fleet_->NeedSymbols(current->first, current->second, epoch_);
      if (need == Fleet::SymbolNeed::kStored) {
        wanted_.erase(current);
      } else if (need == Fleet::SymbolNeed::kAskThisStream) {
        apq::v1::AggregatorMessage ask;
        ask.mutable_need_symbols()->set_object(current->first);
        ask.mutable_need_symbols()->set_build_id(current->second);
        Send(std::move(ask));
      }
    }
  }

  void Send(apq::v1::AggregatorMessage message) {
    absl::MutexLock lock(&mu_);
    if (broken_ || finish_) return;
    out_.push_back(std::move(message));
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
  }

  // Ends the stream once what is queued is written.
  void End(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    if (finish_) return;
    finish_ = std::move(status);
    if (!writing_) Finish(*finish_);
  }

  Fleet* const fleet_;
  apq::v1::AgentMessage in_;  // one read at a time
  int64_t epoch_ = 0;         // 0 until the Hello; touched only between reads
  absl::flat_hash_set<std::pair<std::string, std::string>> wanted_;  // tables not stored yet, likewise

  absl::Mutex mu_;
  std::deque<apq::v1::AggregatorMessage> out_ ABSL_GUARDED_BY(mu_);  // front: being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_ ABSL_GUARDED_BY(mu_);
  int pending_ ABSL_GUARDED_BY(mu_) = 0;  // reports waiting for their outcome
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerBidiReactor<apq::v1::AgentMessage, apq::v1::AggregatorMessage>* IngestService::Stream(
    grpc::CallbackServerContext* /*context*/) {
  return new IngestReactor(fleet_);
}

grpc::Status QueryService::Top(grpc::ServerContext*, const apq::v1::TopRequest* request,
                               apq::v1::TopResponse* response) {
  absl::StatusOr<apq::v1::TopResponse> top = fleet_->Top(*request);
  if (!top.ok()) return ToGrpc(top.status());
  *response = std::move(*top);
  return grpc::Status::OK;
}

grpc::Status QueryService::Diff(grpc::ServerContext*, const apq::v1::DiffRequest* request,
                                apq::v1::DiffResponse* response) {
  absl::StatusOr<apq::v1::DiffResponse> diff = fleet_->Diff(*request);
  if (!diff.ok()) return ToGrpc(diff.status());
  *response = std::move(*diff);
  return grpc::Status::OK;
}

grpc::Status QueryService::Explain(grpc::ServerContext*, const apq::v1::ExplainRequest* request,
                                   apq::v1::ExplainResponse* response) {
  absl::StatusOr<apq::v1::ExplainResponse> explained = fleet_->Explain(*request);
  if (!explained.ok()) return ToGrpc(explained.status());
  *response = std::move(*explained);
  return grpc::Status::OK;
}

grpc::Status QueryService::Hosts(grpc::ServerContext*, const apq::v1::HostsRequest* request,
                                 apq::v1::HostsResponse* response) {
  absl::StatusOr<apq::v1::HostsResponse> hosts = fleet_->Hosts(*request);
  if (!hosts.ok()) return ToGrpc(hosts.status());
  *response = std::move(*hosts);
  return grpc::Status::OK;
}

}  // namespace apq
