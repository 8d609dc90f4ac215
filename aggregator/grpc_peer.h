#ifndef APQ_AGGREGATOR_GRPC_PEER_H_
#define APQ_AGGREGATOR_GRPC_PEER_H_

#include <memory>
#include <string>
#include <vector>

#include "aggregator/admission.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/server_context.h"

namespace apq {

// What the peer of this call may do, from its verified client certificate's
// URI names (a DNS, IP or e-mail name that reads apq://... grants nothing);
// everything where no client certificate is asked for.
inline PeerGrants GrantsOf(const grpc::ServerContextBase& context, bool client_certificates) {
  if (!client_certificates) return PeerGrants::Everyone();
  std::vector<std::string> names;
  if (std::shared_ptr<const grpc::AuthContext> auth = context.auth_context(); auth && auth->IsPeerAuthenticated()) {
    for (const grpc::string_ref& name : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
      names.emplace_back(name.data(), name.size());
    }
  }
  return PeerGrants::FromAltNames(names);
}

}  // namespace apq

#endif  // APQ_AGGREGATOR_GRPC_PEER_H_
