#ifndef APQ_AGENT_CODE_OBJECTS_H_
#define APQ_AGENT_CODE_OBJECTS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/report_stream.h"
#include "common/kernel_symbols.h"

namespace apq {

// Frames as (code object, offset from its text base) using this host's
// kallsyms: identical on every host running the same kernel build, whatever
// KASLR chose. Objects are the kernel image ("vmlinux") and modules, each
// with its build ID. Addresses in no known object are sent as "[unknown]"
// at offset 0: raw kernel addresses (and so this host's KASLR offset) never
// leave the host.
class KallsymsFrameEncoder : public FrameEncoder {
 public:
  // build_id_of(module) gives the build ID of a module ("" is the kernel
  // image), or "" when unknown.
  KallsymsFrameEncoder(const KernelSymbols* symbols, std::function<std::string(const std::string&)> build_id_of);

  apq::v1::Frame Encode(uint64_t ip) override;
  std::vector<apq::v1::CodeObject> TakeNewObjects() override;
  std::vector<apq::v1::CodeObject> AllObjects() const override;

  // The symbol table of one object for upload: offsets and names. Only for
  // objects this encoder announced: the name comes from the aggregator, and
  // becomes a /sys/module path.
  std::optional<apq::v1::SymbolTable> SymbolTableOf(const std::string& object_name) const;

 private:
  struct Object {
    apq::v1::CodeObject wire;
    uint64_t base = 0;
  };
  const Object& ObjectFor(const std::string& module);

  const KernelSymbols* symbols_;
  std::function<std::string(const std::string&)> build_id_of_;
  absl::flat_hash_map<std::string, Object> objects_;  // by module name, "" = vmlinux
  std::vector<uint32_t> fresh_;
};

// Build IDs from /sys/kernel/notes and /sys/module/NAME/notes.
std::string BuildIdOfLoadedObject(const std::string& module);

}  // namespace apq

#endif  // APQ_AGENT_CODE_OBJECTS_H_
