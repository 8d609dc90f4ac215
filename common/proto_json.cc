#include "common/proto_json.h"

#include "google/protobuf/util/json_util.h"

namespace apq {

absl::StatusOr<std::string> ProtoJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) {
    return absl::InternalError("could not print the answer as JSON");
  }
  return out;
}

}  // namespace apq
