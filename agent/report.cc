#include "agent/report.h"

#include "absl/strings/str_format.h"
#include "common/losses.h"
#include "common/stack_paths.h"

namespace apq {

apq::v1::Losses LossesOf(const TrackerSnapshot& snapshot) {
  const auto& c = snapshot.counters;
  apq::v1::Losses l;
#define APQ_SET_LOSS(name, field) l.set_##field(c[APQ_CTR_##name]);
  APQ_LOSS_COUNTERS(APQ_SET_LOSS)
#undef APQ_SET_LOSS
  l.set_recursion_misses(snapshot.recursion_misses);
  return l;
}

PageClass UnflaggedClassOf(uint64_t owner_id, uint32_t stack_id, std::optional<PageClass> path_class) {
  const bool known = owner_id != APQ_OWNER_OVERFLOW && stack_id < APQ_STACK_LOST && path_class.has_value();
  return known ? *path_class : apq::v1::PAGE_CLASS_UNKNOWN;
}

std::vector<std::string> CallPathOfStack(const KernelSymbols& symbols, const std::vector<uint64_t>& innermost_first) {
  std::vector<std::string> names;
  names.reserve(innermost_first.size());
  for (uint64_t ip : innermost_first) {
    std::optional<ResolvedSymbol> symbol = symbols.Resolve(ip);
    names.push_back(symbol ? std::string(symbol->name) : absl::StrFormat("0x%x", ip));
  }
  std::vector<std::string> frames = CallPathRootFirst(names);
  if (frames.empty()) frames = {"[page allocator]"};
  return frames;
}

}  // namespace apq
