#ifndef APQ_AGGREGATOR_QUERY_PATHS_H_
#define APQ_AGGREGATOR_QUERY_PATHS_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "aggregator/fleet_epoch.h"
#include "aggregator/store.h"
#include "apq/v1/apq.pb.h"
#include "common/kernel_symbols.h"

namespace apq {

// A call path: function names, root first, and their folded form.
struct NamedPath {
  std::vector<std::string> frames;
  std::vector<std::string> objects;  // each frame's code object ("" where none is known)
  std::string folded;
  std::string function;  // FunctionOf(frames)
  // (object, build ID) of the symbol tables not received yet, whose frames
  // are named object+0xoffset here; such a path is not cached.
  std::vector<std::pair<std::string, std::string>> tables_pending;
};

// Names the call paths of stacks: function names, root first, allocator
// frames removed, from the symbol table of each frame's code object (one per
// build ID, from the epoch's own cluster). Paths are cached per (epoch, stack), since a stack never
// changes within its epoch, and interned: the same path on many hosts is
// held once.
class PathNamer {
 public:
  // Gives the stored symbol table of a key, or nullopt if no agent of its
  // cluster has uploaded it yet. Tables arrive only through Add, so a
  // missing one is not asked for again.
  using TableSource = std::function<absl::StatusOr<std::optional<apq::v1::SymbolTable>>(const SymbolTableKey& key)>;
  explicit PathNamer(TableSource source) : source_(std::move(source)) {}

  // A table just uploaded by an agent of `cluster`: used from now on
  // without reading it back.
  void Add(const std::string& cluster, const apq::v1::SymbolTable& table);
  // Frames of objects without a table are named "object+0xoffset" (and
  // such paths are not cached, so they get their names once it arrives).
  // The path is valid until the next call.
  absl::StatusOr<const NamedPath*> PathOf(const HostEpoch& epoch, uint32_t stack_id);

 private:
  absl::StatusOr<const KernelSymbols*> SymbolsOf(const SymbolTableKey& key);

  TableSource source_;
  // nullptr: known to be missing.
  absl::flat_hash_map<SymbolTableKey, std::unique_ptr<KernelSymbols>> symbols_;
  absl::node_hash_map<std::string, NamedPath> interned_;  // by folded path
  absl::flat_hash_map<std::pair<int64_t, uint32_t>, const NamedPath*> paths_;
  NamedPath uncached_;  // the last incomplete path
};

}  // namespace apq

#endif  // APQ_AGGREGATOR_QUERY_PATHS_H_
