#ifndef APQ_AGGREGATOR_SERVICES_H_
#define APQ_AGGREGATOR_SERVICES_H_

#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "aggregator/epoch_state.h"
#include "aggregator/store.h"
#include "apq/v1/apq.grpc.pb.h"

namespace apq {

// What both services share: the store, and the state of every epoch an
// agent is streaming (loaded from the store when its stream opens).
// Ingestion is serialized by one mutex; see docs for the scale this serves.
class Fleet {
 public:
  Fleet(std::unique_ptr<Store> store, int64_t fresh_millis) : store_(std::move(store)), fresh_millis_(fresh_millis) {}

  absl::StatusOr<int64_t> Attach(const apq::v1::Hello& hello, uint64_t* last_sequence);
  void Detach(int64_t epoch_id);
  absl::StatusOr<EpochState::Outcome> Apply(int64_t epoch_id, const apq::v1::Report& report);
  absl::Status PutSymbols(const apq::v1::SymbolTable& table);
  absl::StatusOr<bool> HasSymbols(const std::string& object, const std::string& build_id);
  absl::StatusOr<apq::v1::TopResponse> Top(const apq::v1::TopRequest& request);
  absl::StatusOr<apq::v1::HostsResponse> Hosts(const apq::v1::HostsRequest& request);

 private:
  struct Live {
    EpochState state;
    int streams = 0;
  };
  absl::Mutex mu_;
  std::unique_ptr<Store> store_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, Live> live_ ABSL_GUARDED_BY(mu_);
  const int64_t fresh_millis_;
};

class IngestService final : public apq::v1::Ingest::Service {
 public:
  explicit IngestService(Fleet* fleet) : fleet_(fleet) {}
  grpc::Status Stream(grpc::ServerContext* context,
                      grpc::ServerReaderWriter<apq::v1::AggregatorMessage, apq::v1::AgentMessage>* stream) override;

 private:
  Fleet* fleet_;
};

class QueryService final : public apq::v1::Query::Service {
 public:
  explicit QueryService(Fleet* fleet) : fleet_(fleet) {}
  grpc::Status Top(grpc::ServerContext* context, const apq::v1::TopRequest* request,
                   apq::v1::TopResponse* response) override;
  grpc::Status Hosts(grpc::ServerContext* context, const apq::v1::HostsRequest* request,
                     apq::v1::HostsResponse* response) override;

 private:
  Fleet* fleet_;
};

// A status for the wire: same code and message.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace apq

#endif  // APQ_AGGREGATOR_SERVICES_H_
