#ifndef APQ_AGGREGATOR_QUERY_SERVICE_H_
#define APQ_AGGREGATOR_QUERY_SERVICE_H_

#include "aggregator/fleet.h"
#include "apq/v1/apq.grpc.pb.h"

namespace apq {

// Top, hosts, explain and diff for the CLI: each answered by the fleet, for
// a cluster the caller's certificate names when client certificates are
// required (see PeerGrants).
class QueryService final : public apq::v1::Query::Service {
 public:
  QueryService(Fleet* fleet, bool client_certificates) : fleet_(fleet), client_certificates_(client_certificates) {}
  grpc::Status Top(grpc::ServerContext* context, const apq::v1::TopRequest* request,
                   apq::v1::TopResponse* response) override;
  grpc::Status Hosts(grpc::ServerContext* context, const apq::v1::HostsRequest* request,
                     apq::v1::HostsResponse* response) override;
  grpc::Status Explain(grpc::ServerContext* context, const apq::v1::ExplainRequest* request,
                       apq::v1::ExplainResponse* response) override;
  grpc::Status Diff(grpc::ServerContext* context, const apq::v1::DiffRequest* request,
                    apq::v1::DiffResponse* response) override;
  grpc::Status Clusters(grpc::ServerContext* context, const apq::v1::ClustersRequest* request,
                        apq::v1::ClustersResponse* response) override;

 private:
  // PermissionDenied (counted) unless the caller may read the cluster.
  grpc::Status MayRead(const grpc::ServerContext& context, const std::string& cluster);

  Fleet* fleet_;
  const bool client_certificates_;
};

}  // namespace apq

#endif  // APQ_AGGREGATOR_QUERY_SERVICE_H_
