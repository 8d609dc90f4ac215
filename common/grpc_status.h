#ifndef APQ_COMMON_GRPC_STATUS_H_
#define APQ_COMMON_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace apq {

// gRPC's and Abseil's status codes are the same numbers (both follow
// google.rpc.Code): these two are the only conversions between them.

// A status for the wire: same code and message.
inline grpc::Status ToGrpc(const absl::Status& status) {
  return status.ok() ? grpc::Status::OK
                     : grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// A status from the wire, its message prefixed with what was asked of whom.
inline absl::Status FromGrpc(const grpc::Status& status, const std::string& context) {
  return status.ok() ? absl::OkStatus()
                     : absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                                    context + ": " + status.error_message());
}

}  // namespace apq

#endif  // APQ_COMMON_GRPC_STATUS_H_
