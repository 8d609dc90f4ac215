#include "common/losses.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/descriptor.h"

namespace apq {

std::vector<std::pair<std::string, int64_t>> LossValues(const apq::v1::Losses& losses) {
  const google::protobuf::Descriptor* descriptor = losses.GetDescriptor();
  const google::protobuf::Reflection* reflection = losses.GetReflection();
  std::vector<std::pair<std::string, int64_t>> values;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    const int64_t value = field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_INT64
                              ? reflection->GetInt64(losses, field)
                              : static_cast<int64_t>(reflection->GetUInt64(losses, field));
    values.emplace_back(field->name(), value);
  }
  return values;
}

std::string FormatLosses(const apq::v1::Losses& losses) {
  return absl::StrJoin(LossValues(losses), " ", [](std::string* out, const std::pair<std::string, int64_t>& loss) {
    absl::StrAppend(out, absl::StrReplaceAll(loss.first, {{"_", "-"}}), "=",
                    loss.second < 0 ? "not-counted" : absl::StrCat(loss.second));
  });
}

}  // namespace apq
