#include "aggregator/query_paths.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/stack_paths.h"
#include "common/status_macros.h"

namespace apq {
namespace {

// Bounds the path cache: cleared when it grows past this many paths.
constexpr size_t kMaxCachedPaths = 1 << 20;

std::unique_ptr<KernelSymbols> Parsed(const apq::v1::SymbolTable& table) {
  std::vector<std::pair<uint64_t, std::string>> symbols;
  symbols.reserve(static_cast<size_t>(table.symbols_size()));
  for (const apq::v1::Symbol& s : table.symbols()) symbols.emplace_back(s.offset(), s.name());
  return std::make_unique<KernelSymbols>(KernelSymbols::FromOffsets(symbols));
}

}  // namespace

void PathNamer::Add(const std::string& cluster, const apq::v1::SymbolTable& table) {
  symbols_[{cluster, table.object(), table.build_id()}] = Parsed(table);
}

absl::StatusOr<const KernelSymbols*> PathNamer::SymbolsOf(const SymbolTableKey& key) {
  if (auto cached = symbols_.find(key); cached != symbols_.end()) return cached->second.get();
  APQ_ASSIGN_OR_RETURN(std::optional<apq::v1::SymbolTable> table, source_(key));
  return (symbols_[key] = table ? Parsed(*table) : nullptr).get();
}

absl::StatusOr<const NamedPath*> PathNamer::PathOf(const HostEpoch& epoch, uint32_t stack_id) {
  if (auto cached = paths_.find({epoch.epoch_id, stack_id}); cached != paths_.end()) return cached->second;
  auto stack = epoch.state.stacks().find(stack_id);
  if (stack == epoch.state.stacks().end()) {
    uncached_.frames = {kStackUnknownFrame};
    uncached_.objects = {""};
    uncached_.folded = uncached_.function = uncached_.frames[0];
    return &uncached_;
  }
  bool complete = true;
  std::vector<std::string> names, objects;
  std::vector<std::pair<std::string, std::string>> pending;
  for (const apq::v1::Frame& frame : stack->second.frames()) {
    auto object = epoch.state.objects().find(frame.object_id());
    if (object == epoch.state.objects().end()) {
      names.push_back("[unknown]");
      objects.emplace_back();
      complete = false;
      continue;
    }
    APQ_ASSIGN_OR_RETURN(const KernelSymbols* symbols,
                         SymbolsOf({epoch.cluster, object->second.name(), object->second.build_id()}));
    std::optional<ResolvedSymbol> symbol = symbols ? symbols->Resolve(frame.offset()) : std::nullopt;
    if (!symbols) {
      complete = false;
      std::pair<std::string, std::string> table{object->second.name(), object->second.build_id()};
      if (std::find(pending.begin(), pending.end(), table) == pending.end()) pending.push_back(std::move(table));
    }
    names.push_back(symbol ? std::string(symbol->name)
                           : absl::StrCat(object->second.name(), "+0x", absl::Hex(frame.offset())));
    objects.push_back(object->second.name());
  }
  NamedPath path;
  path.frames = CallPathRootFirst(names);
  path.objects = KeptRootFirst(objects, path.frames.size());
  if (path.frames.empty()) {
    path.frames = {"[page allocator]"};
    path.objects = {""};
  }
  path.folded = FoldPath(path.frames);
  path.function = FunctionOf(path.frames);
  path.tables_pending = std::move(pending);
  if (!complete) {
    uncached_ = std::move(path);
    return &uncached_;
  }
  if (paths_.size() >= kMaxCachedPaths) {
    paths_.clear();
    interned_.clear();
  }
  auto interned = interned_.try_emplace(path.folded, std::move(path)).first;
  return paths_[{epoch.epoch_id, stack_id}] = &interned->second;
}

}  // namespace apq
