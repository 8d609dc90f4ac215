#ifndef APQ_COMMON_STACK_PATHS_H_
#define APQ_COMMON_STACK_PATHS_H_

#include <string>
#include "absl/strings/string_view.h"
#include <vector>

namespace apq {

// The one frame of a path whose stack is not known: its walk failed, the
// stack table was full (APQ_STACK_LOST), or its definition never arrived.
inline constexpr char kStackUnknownFrame[] = "[stack unknown]";

// True for frames of the tracing plumbing (BPF, perf, tracepoint glue) and
// of the page allocator itself: they say nothing about who took the page.
bool IsAllocatorOrTracingFrame(absl::string_view function);

// Given function names innermost first (as the kernel unwinds them), drops
// the innermost run of allocator and tracing frames and returns the rest
// root first, the order flame graphs read.
std::vector<std::string> CallPathRootFirst(const std::vector<std::string>& innermost_first);

// What CallPathRootFirst keeps of any per-frame values given innermost
// first (each frame's code object, say): the outermost `kept`, root first.
std::vector<std::string> KeptRootFirst(const std::vector<std::string>& innermost_first, size_t kept);

// The function a path is grouped by (--by function): its innermost frame
// outside the memory APIs that take pages for their callers (large kmalloc,
// vmalloc, kvmalloc): for a pipe ring, pipe_resize_ring.
std::string FunctionOf(const std::vector<std::string>& root_first);

// "root;...;leaf": the folded-stack key. Characters that would break the
// folded format (';', spaces, newlines) are replaced by '_'.
std::string FoldPath(const std::vector<std::string>& root_first);

}  // namespace apq

#endif  // APQ_COMMON_STACK_PATHS_H_
