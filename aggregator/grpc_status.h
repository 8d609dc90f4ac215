#ifndef APQ_AGGREGATOR_GRPC_STATUS_H_
#define APQ_AGGREGATOR_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "aggregator/admission.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"

namespace apq {

// A status for the wire: same code and message.
inline grpc::Status ToGrpc(const absl::Status& status) {
  return status.ok() ? grpc::Status::OK
                     : grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// What the peer of this call may do, from its verified client certificate's
// subject alternative names; everything where no certificate is asked for.
inline PeerGrants GrantsOf(const grpc::ServerContextBase& context, bool client_certificates) {
  if (!client_certificates) return PeerGrants::Everyone();
  std::vector<std::string> names;
  if (std::shared_ptr<const grpc::AuthContext> auth = context.auth_context(); auth && auth->IsPeerAuthenticated()) {
    for (const grpc::string_ref& name : auth->FindPropertyValues("x509_subject_alternative_name")) {
      names.emplace_back(name.data(), name.size());
    }
  }
  return PeerGrants::FromAltNames(names);
}

}  // namespace apq

#endif  // APQ_AGGREGATOR_GRPC_STATUS_H_
