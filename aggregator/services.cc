#include "aggregator/services.h"

#include <chrono>
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
      fleet->epochs_[info.epoch_id].epoch = {info.epoch_id, info.host_id, std::move(info.cluster), std::move(info.host),
                                             std::move(info.build_id), info.sample_bytes, info.last_report_ms,
                                             std::move(*state)};
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
    live->second.epoch = {info->epoch_id, info->host_id, info->cluster, info->host, info->build_id,
                          info->sample_bytes, info->last_report_ms, std::move(loaded)};
  }
  ++live->second.streams;
  int64_t& newest = newest_epoch_[info->host_id];
  newest = std::max(newest, info->epoch_id);
  *last_sequence = live->second.epoch.state.last_sequence();
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

absl::StatusOr<EpochState::Outcome> Fleet::Apply(int64_t epoch_id, const apq::v1::Report& report) {
  Pending pending;
  {
    absl::MutexLock lock(&state_mu_);
    auto live = epochs_.find(epoch_id);
    if (live == epochs_.end()) return absl::FailedPreconditionError("epoch not attached");
    HostEpoch& epoch = live->second.epoch;
    absl::StatusOr<EpochState::Outcome> outcome = epoch.state.Apply(report);
    if (!outcome.ok() || *outcome != EpochState::Outcome::kApplied) return outcome;
    epoch.last_report_ms = clock_();
    pending.write = Store::Applied(epoch_id, epoch.state, report, epoch.last_report_ms);
    absl::MutexLock queue_lock(&queue_mu_);  // queued in the order applied
    queue_.push_back(&pending);
  }
  absl::MutexLock queue_lock(&queue_mu_);
  queue_mu_.Await(absl::Condition(&pending.done));
  if (!pending.status.ok()) return pending.status;
  return EpochState::Outcome::kApplied;
}

void Fleet::CommitLoop() {
  while (true) {
    std::vector<Pending*> batch;
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
    for (const Pending* pending : batch) writes.push_back(&pending->write);
    absl::Status status;
    {
      absl::MutexLock store_lock(&store_mu_);
      status = store_->CommitReports(writes);
      if (!status.ok()) {
        std::cerr << "apq-aggregator: storing " << writes.size() << " reports failed (their streams end; agents "
                  << "resend): " << status.message() << std::endl;
        // Memory ran ahead of the file: take the file's state back, so the
        // agents' resends apply again.
        absl::flat_hash_set<int64_t> failed;
        for (const Pending* pending : batch) failed.insert(pending->write.epoch_id);
        for (int64_t epoch_id : failed) {
          absl::StatusOr<EpochState> reloaded = store_->LoadEpoch(epoch_id);
          absl::MutexLock lock(&state_mu_);
          auto live = epochs_.find(epoch_id);
          if (live == epochs_.end()) continue;
          if (reloaded.ok()) {
            live->second.epoch.state = std::move(*reloaded);
          } else {
            live->second.epoch.state = EpochState();  // unreadable: the agent is asked for a snapshot
          }
        }
      }
    }
    absl::MutexLock queue_lock(&queue_mu_);
    for (Pending* pending : batch) {
      pending->status = status;
      pending->done = true;
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
    absl::MutexLock lock(&reader_mu_);
    return store_->TopFromHistory(request, clock_());
  }
  absl::MutexLock lock(&state_mu_);
  return TopOfEpochs(FreshEpochs(request, clock_()), request, &namer_);
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

grpc::Status IngestService::Stream(
    grpc::ServerContext* /*context*/,
    grpc::ServerReaderWriter<apq::v1::AggregatorMessage, apq::v1::AgentMessage>* stream) {
  apq::v1::AgentMessage message;
  if (!stream->Read(&message)) return grpc::Status::OK;
  if (!message.has_hello()) return grpc::Status(grpc::INVALID_ARGUMENT, "the first message must be a hello");
  const apq::v1::Hello hello = message.hello();
  uint64_t last_sequence = 0;
  absl::StatusOr<int64_t> epoch = fleet_->Attach(hello, &last_sequence);
  if (!epoch.ok()) return ToGrpc(epoch.status());
  struct Detacher {
    Fleet* fleet;
    int64_t epoch;
    ~Detacher() { fleet->Detach(epoch); }
  } detach{fleet_, *epoch};

  apq::v1::AggregatorMessage reply;
  reply.mutable_ack()->set_sequence(last_sequence);  // what is stored already need not come again
  if (!stream->Write(reply)) return grpc::Status::OK;
  // Tables this stream's frames point into that are not stored yet; each
  // report asks again for those no other stream is uploading.
  absl::flat_hash_set<std::pair<std::string, std::string>> wanted;
  if (!hello.kernel().build_id().empty()) wanted.emplace("vmlinux", hello.kernel().build_id());
  auto ask_for_symbols = [&]() -> bool {
    for (auto want = wanted.begin(); want != wanted.end();) {
      auto current = want++;
      Fleet::SymbolNeed need = fleet_->NeedSymbols(current->first, current->second, *epoch);
      if (need == Fleet::SymbolNeed::kStored) {
        wanted.erase(current);
      } else if (need == Fleet::SymbolNeed::kAskThisStream) {
        apq::v1::AggregatorMessage ask;
        ask.mutable_need_symbols()->set_object(current->first);
        ask.mutable_need_symbols()->set_build_id(current->second);
        if (!stream->Write(ask)) return false;
      }
    }
    return true;
  };
  if (!ask_for_symbols()) return grpc::Status::OK;

  while (stream->Read(&message)) {
    if (message.has_symbols()) {
      if (absl::StatusOr<bool> stored = fleet_->PutSymbols(*epoch, message.symbols()); !stored.ok()) {
        return ToGrpc(stored.status());
      }
      continue;
    }
    if (!message.has_report()) return grpc::Status(grpc::INVALID_ARGUMENT, "expected a report or symbols");
    const apq::v1::Report& report = message.report();
    absl::StatusOr<EpochState::Outcome> outcome = fleet_->Apply(*epoch, report);
    if (!outcome.ok()) return ToGrpc(outcome.status());
    apq::v1::AggregatorMessage answer;
    if (*outcome == EpochState::Outcome::kNeedSnapshot) {
      answer.mutable_need_snapshot();
    } else {
      answer.mutable_ack()->set_sequence(report.sequence());
    }
    if (!stream->Write(answer)) return grpc::Status::OK;
    for (const apq::v1::CodeObject& object : report.objects()) {
      if (object.name() != "[unknown]" && !object.build_id().empty() && wanted.size() < kMaxWantedTables) {
        wanted.emplace(object.name(), object.build_id());
      }
    }
    if (!ask_for_symbols()) return grpc::Status::OK;
  }
  return grpc::Status::OK;
}

grpc::Status QueryService::Top(grpc::ServerContext*, const apq::v1::TopRequest* request,
                               apq::v1::TopResponse* response) {
  absl::StatusOr<apq::v1::TopResponse> top = fleet_->Top(*request);
  if (!top.ok()) return ToGrpc(top.status());
  *response = std::move(*top);
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
