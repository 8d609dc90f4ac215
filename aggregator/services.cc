#include "aggregator/services.h"

#include <chrono>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace apq {
namespace {

constexpr size_t kMaxNameBytes = 256;
constexpr int kMaxSymbols = 1 << 21;

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

absl::StatusOr<int64_t> Fleet::Attach(const apq::v1::Hello& hello, uint64_t* last_sequence) {
  if (absl::Status status = ValidateHello(hello); !status.ok()) return status;
  absl::MutexLock lock(&mu_);
  EpochState loaded;
  absl::StatusOr<int64_t> epoch = store_->OpenEpoch(hello, &loaded);
  if (!epoch.ok()) return epoch.status();
  Live& live = live_[*epoch];
  if (live.streams++ == 0) live.state = std::move(loaded);
  *last_sequence = live.state.last_sequence();
  return *epoch;
}

void Fleet::Detach(int64_t epoch_id) {
  absl::MutexLock lock(&mu_);
  auto live = live_.find(epoch_id);
  if (live != live_.end() && --live->second.streams == 0) live_.erase(live);
}

absl::StatusOr<EpochState::Outcome> Fleet::Apply(int64_t epoch_id, const apq::v1::Report& report) {
  absl::MutexLock lock(&mu_);
  auto live = live_.find(epoch_id);
  if (live == live_.end()) return absl::FailedPreconditionError("epoch not attached");
  return store_->ApplyReport(epoch_id, &live->second.state, report);
}

absl::Status Fleet::PutSymbols(const apq::v1::SymbolTable& table) {
  if (table.object().size() > kMaxNameBytes || table.build_id().size() > kMaxNameBytes ||
      table.symbols_size() > kMaxSymbols) {
    return absl::InvalidArgumentError("symbol table over its size limits");
  }
  absl::MutexLock lock(&mu_);
  return store_->PutSymbolTable(table);
}

absl::StatusOr<bool> Fleet::HasSymbols(const std::string& object, const std::string& build_id) {
  absl::MutexLock lock(&mu_);
  return store_->HasSymbolTable(object, build_id);
}

absl::StatusOr<apq::v1::TopResponse> Fleet::Top(const apq::v1::TopRequest& request) {
  if (request.cluster().empty()) return absl::InvalidArgumentError("top needs a cluster");
  absl::MutexLock lock(&mu_);
  return store_->Top(request, UnixMillis(), fresh_millis_, [this](int64_t epoch) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto found = live_.find(epoch);  // mu_ is held by this Top call
    return found == live_.end() ? nullptr : &found->second.state;
  });
}

absl::StatusOr<apq::v1::HostsResponse> Fleet::Hosts(const apq::v1::HostsRequest& request) {
  absl::MutexLock lock(&mu_);
  return store_->Hosts(request);
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
  absl::flat_hash_set<std::string> requested;
  auto request_symbols = [&](const std::string& object, const std::string& build_id) -> bool {
    if (build_id.empty() || !requested.insert(object + '\0' + build_id).second) return true;
    absl::StatusOr<bool> have = fleet_->HasSymbols(object, build_id);
    if (!have.ok() || *have) return true;
    apq::v1::AggregatorMessage ask;
    ask.mutable_need_symbols()->set_object(object);
    ask.mutable_need_symbols()->set_build_id(build_id);
    return stream->Write(ask);
  };
  if (!request_symbols("vmlinux", hello.kernel().build_id())) return grpc::Status::OK;

  while (stream->Read(&message)) {
    if (message.has_symbols()) {
      if (absl::Status status = fleet_->PutSymbols(message.symbols()); !status.ok()) return ToGrpc(status);
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
      if (object.name() != "[unknown]" && !request_symbols(object.name(), object.build_id())) return grpc::Status::OK;
    }
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
