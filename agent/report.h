// A tracker snapshot in the wire's terms: its call paths and their class,
// its losses.
#ifndef APQ_AGENT_REPORT_H_
#define APQ_AGENT_REPORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/tracker_snapshot.h"
#include "apq/v1/apq.pb.h"
#include "common/kernel_symbols.h"
#include "common/page_classes.h"

namespace apq {

// The loss counters of a snapshot, as the wire carries them too
// (recursion_misses -1: skipped tracepoint runs could not be counted).
apq::v1::Losses LossesOf(const TrackerSnapshot& snapshot);

// The class of an owner's unflagged pages: its path's class (PathClassOf of
// the path, when the path is known), and unknown where the path is not (the
// overflow owner, a lost or unsampled stack, a stack not read yet).
PageClass UnflaggedClassOf(uint64_t owner_id, uint32_t stack_id, std::optional<PageClass> path_class);

// A stack's call path: function names root first, the allocator's own
// frames dropped ("[page allocator]" when nothing else is left).
std::vector<std::string> CallPathOfStack(const KernelSymbols& symbols, const std::vector<uint64_t>& innermost_first);

}  // namespace apq

#endif  // APQ_AGENT_REPORT_H_
