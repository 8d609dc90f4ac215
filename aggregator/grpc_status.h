#ifndef APQ_AGGREGATOR_GRPC_STATUS_H_
#define APQ_AGGREGATOR_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace apq {

// A status for the wire: same code and message.
inline grpc::Status ToGrpc(const absl::Status& status) {
  return status.ok() ? grpc::Status::OK
                     : grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace apq

#endif  // APQ_AGGREGATOR_GRPC_STATUS_H_
