#ifndef APQ_COMMON_PROTO_JSON_H_
#define APQ_COMMON_PROTO_JSON_H_

#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"

namespace apq {

// apq's one JSON dialect: a wire message with the .proto's own (snake_case)
// field names, every field present (zeros too: a consumer must not tell
// "0 bytes" from "not reported" by absence). Every --format json and the web
// view's API print through here.
absl::StatusOr<std::string> ProtoJson(const google::protobuf::Message& message);

}  // namespace apq

#endif  // APQ_COMMON_PROTO_JSON_H_
