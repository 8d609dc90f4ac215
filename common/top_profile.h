// apq top's answer as flame-graph input and as a pprof profile: the fleet's
// (apq top --format folded|pprof) and one host's (apq-agent --local) alike.
#ifndef APQ_COMMON_TOP_PROFILE_H_
#define APQ_COMMON_TOP_PROFILE_H_

#include <string>
#include <vector>

#include "apq/v1/apq.pb.h"
#include "common/page_classes.h"
#include "common/pprof.h"

namespace apq {

// One line per stack holding bytes: "root;...;leaf BYTES" (grouped by stack).
std::string FoldedOfTop(const apq::v1::TopResponse& response);

// A profile of an answer grouped by stack (with_allocated for alloc_space):
// per entry its bytes outstanding, split per holder when the entry names
// processes (process, cgroup and host labels, numeric pid), and per class
// of the selected classes in class views (class label); and its bytes allocated since the agents
// started. `labels` go on every sample (the CLI's host filter).
MemoryProfile ProfileOfTop(const apq::v1::TopResponse& response, ClassFilter filter,
                           const std::vector<std::pair<std::string, std::string>>& labels,
                           std::vector<std::string> comments);

}  // namespace apq

#endif  // APQ_COMMON_TOP_PROFILE_H_
