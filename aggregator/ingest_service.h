#ifndef APQ_AGGREGATOR_INGEST_SERVICE_H_
#define APQ_AGGREGATOR_INGEST_SERVICE_H_

#include "aggregator/fleet.h"
#include "apq/v1/apq.grpc.pb.h"

namespace apq {

// The agents' streams, on gRPC's callback API: a stream waiting for its
// agent, or for its report's commit, holds no thread, so one aggregator
// serves tens of thousands of connected hosts.
class IngestService final : public apq::v1::Ingest::CallbackService {
 public:
  explicit IngestService(Fleet* fleet) : fleet_(fleet) {}
  grpc::ServerBidiReactor<apq::v1::AgentMessage, apq::v1::AggregatorMessage>* Stream(
      grpc::CallbackServerContext* context) override;

 private:
  Fleet* fleet_;
};

}  // namespace apq

#endif  // APQ_AGGREGATOR_INGEST_SERVICE_H_
