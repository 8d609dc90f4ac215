#include "agent/code_objects.h"

#include <algorithm>

#include "common/build_id.h"

namespace apq {
namespace {
constexpr char kUnknownObject[] = "[unknown]";
constexpr char kKernelImage[] = "vmlinux";
}  // namespace

KallsymsFrameEncoder::KallsymsFrameEncoder(const KernelSymbols* symbols,
                                           std::function<std::string(const std::string&)> build_id_of)
    : symbols_(symbols), build_id_of_(std::move(build_id_of)) {}

const KallsymsFrameEncoder::Object& KallsymsFrameEncoder::ObjectFor(const std::string& module) {
  auto found = objects_.find(module);
  if (found != objects_.end()) return found->second;
  Object object;
  object.wire.set_id(static_cast<uint32_t>(objects_.size()));
  if (module == kUnknownObject) {
    object.wire.set_name(kUnknownObject);
  } else {
    object.wire.set_name(module.empty() ? kKernelImage : module);
    object.wire.set_build_id(build_id_of_(module));
    object.base = symbols_->TextBase(module).value_or(0);
  }
  fresh_.push_back(object.wire.id());
  return objects_.emplace(module, std::move(object)).first->second;
}

apq::v1::Frame KallsymsFrameEncoder::Encode(uint64_t ip) {
  apq::v1::Frame frame;
  std::optional<ResolvedSymbol> symbol = symbols_->Resolve(ip);
  std::string module = symbol ? std::string(symbol->module) : kUnknownObject;
  const Object& object = ObjectFor(module);
  frame.set_object_id(object.wire.id());
  if (module != kUnknownObject && ip >= object.base) frame.set_offset(ip - object.base);
  return frame;
}

std::vector<apq::v1::CodeObject> KallsymsFrameEncoder::TakeNewObjects() {
  std::vector<apq::v1::CodeObject> result;
  for (const auto& [name, object] : objects_) {
    if (std::find(fresh_.begin(), fresh_.end(), object.wire.id()) != fresh_.end()) result.push_back(object.wire);
  }
  fresh_.clear();
  return result;
}

std::vector<apq::v1::CodeObject> KallsymsFrameEncoder::AllObjects() const {
  std::vector<apq::v1::CodeObject> result;
  for (const auto& [name, object] : objects_) result.push_back(object.wire);
  return result;
}

std::optional<apq::v1::SymbolTable> KallsymsFrameEncoder::SymbolTableOf(const std::string& object_name) const {
  std::string module = object_name == kKernelImage ? "" : object_name;
  if (object_name == kUnknownObject || !objects_.contains(module)) return std::nullopt;
  apq::v1::SymbolTable table;
  table.set_object(object_name);
  table.set_build_id(build_id_of_(module));
  for (auto& [offset, name] : symbols_->OffsetsOf(module)) {
    apq::v1::Symbol* symbol = table.add_symbols();
    symbol->set_offset(offset);
    symbol->set_name(name);
  }
  return table;
}

std::string BuildIdOfLoadedObject(const std::string& module) {
  absl::StatusOr<std::string> id =
      ReadGnuBuildId(module.empty() ? "/sys/kernel/notes" : "/sys/module/" + module + "/notes/.note.gnu.build-id");
  return id.ok() ? *id : "";
}

}  // namespace apq
