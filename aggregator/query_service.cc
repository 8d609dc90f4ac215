#include "aggregator/query_service.h"

#include "aggregator/grpc_peer.h"
#include "common/grpc_status.h"

namespace apq {
namespace {

template <typename Response>
grpc::Status Reply(absl::StatusOr<Response> answer, Response* response) {
  if (!answer.ok()) return ToGrpc(answer.status());
  *response = std::move(*answer);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status QueryService::MayRead(const grpc::ServerContext& context, const std::string& cluster) {
  absl::Status granted = GrantsOf(context, client_certificates_).MayRead(cluster);
  if (!granted.ok()) fleet_->refusals().Count(Refusal::kReadNotGranted);
  return ToGrpc(granted);
}

grpc::Status QueryService::Top(grpc::ServerContext* context, const apq::v1::TopRequest* request,
                               apq::v1::TopResponse* response) {
  if (grpc::Status denied = MayRead(*context, request->cluster()); !denied.ok()) return denied;
  return Reply(fleet_->Top(*request), response);
}

grpc::Status QueryService::Hosts(grpc::ServerContext* context, const apq::v1::HostsRequest* request,
                                 apq::v1::HostsResponse* response) {
  if (grpc::Status denied = MayRead(*context, request->cluster()); !denied.ok()) return denied;
  return Reply(fleet_->Hosts(*request), response);
}

grpc::Status QueryService::Explain(grpc::ServerContext* context, const apq::v1::ExplainRequest* request,
                                   apq::v1::ExplainResponse* response) {
  if (grpc::Status denied = MayRead(*context, request->cluster()); !denied.ok()) return denied;
  return Reply(fleet_->Explain(*request), response);
}

grpc::Status QueryService::Diff(grpc::ServerContext* context, const apq::v1::DiffRequest* request,
                                apq::v1::DiffResponse* response) {
  if (grpc::Status denied = MayRead(*context, request->cluster()); !denied.ok()) return denied;
  return Reply(fleet_->Diff(*request), response);
}

grpc::Status QueryService::Clusters(grpc::ServerContext* context, const apq::v1::ClustersRequest*,
                                    apq::v1::ClustersResponse* response) {
  const PeerGrants grants = GrantsOf(*context, client_certificates_);
  return Reply(fleet_->Clusters([&grants](const std::string& cluster) { return grants.MayRead(cluster).ok(); }),
               response);
}

}  // namespace apq
