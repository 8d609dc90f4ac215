#ifndef APQ_AGGREGATOR_INGEST_SERVICE_H_
#define APQ_AGGREGATOR_INGEST_SERVICE_H_

#include "aggregator/fleet.h"
#include "apq/v1/apq.grpc.pb.h"

namespace apq {

// The agents' streams, on gRPC's callback API: a stream waiting for its
// agent, or for its report's commit, holds no thread, so one aggregator
// serves tens of thousands of connected hosts.
//
// When client certificates are required, an agent reports only as the
// cluster and host its certificate names (PeerGrants); every host's stream
// is held to the rate limiter's bytes per second.
class IngestService final : public apq::v1::Ingest::CallbackService {
 public:
  IngestService(Fleet* fleet, bool client_certificates, HostRateLimiter* rate)
      : fleet_(fleet), client_certificates_(client_certificates), rate_(rate) {}
  grpc::ServerBidiReactor<apq::v1::AgentMessage, apq::v1::AggregatorMessage>* Stream(
      grpc::CallbackServerContext* context) override;

 private:
  Fleet* fleet_;
  const bool client_certificates_;
  HostRateLimiter* rate_;
};

}  // namespace apq

#endif  // APQ_AGGREGATOR_INGEST_SERVICE_H_
