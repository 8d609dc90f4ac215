#include "common/stack_paths.h"

#include <algorithm>
#include <array>

#include "absl/strings/match.h"

namespace apq {
namespace {

// Exact names of allocator entry points and internals, 5.10 to 6.18. The
// _noprof suffix (memory allocation profiling, 6.10+) is removed first.
constexpr std::array<absl::string_view, 35> kAllocatorFunctions = {
    "__alloc_pages",
    "__alloc_pages_nodemask",
    "__alloc_pages_slowpath",
    "__alloc_pages_direct_compact",
    "__alloc_pages_direct_reclaim",
    "__alloc_pages_may_oom",
    "__alloc_frozen_pages",
    "alloc_frozen_pages",
    "alloc_frozen_pages_nolock",
    "alloc_pages",
    "alloc_pages_current",
    "alloc_pages_mpol",
    "alloc_pages_node",
    "__alloc_pages_node",
    "alloc_pages_vma",
    "__folio_alloc",
    "folio_alloc",
    "folio_alloc_mpol",
    "get_page_from_freelist",
    "rmqueue",
    "alloc_pages_nolock",
    "__get_free_pages",
    "vma_alloc_folio",  // alloc_pages_vma's successor (6.0+): the fault path matches 5.10's
    // Huge pages' own wrappers (static, so seen when not inlined): the THP
    // fault's (6.12+) and khugepaged's, 5.10 to 6.18; their callers are the paths.
    "vma_alloc_anon_folio_pmd",
    "khugepaged_alloc_page",
    "hpage_collapse_alloc_page",
    "hpage_collapse_alloc_folio",
    "alloc_charge_hpage",
    "alloc_charge_folio",
    // The bulk allocator: its fexit hook sees it as the innermost frame.
    "__alloc_pages_bulk",
    "alloc_pages_bulk",
    "alloc_pages_bulk_array",
    "alloc_pages_bulk_array_node",
    "alloc_pages_bulk_node",
    "alloc_pages_bulk_array_mempolicy",
};

// Prefixes of the tracing path between the tracepoint and the BPF program.
constexpr std::array<absl::string_view, 7> kTracingPrefixes = {
    "bpf_", "__bpf_", "perf_trace_", "perf_", "trace_call_bpf", "__traceiter_", "trace_event_raw_event_",
};

// Memory APIs that reach the page allocator on their callers' behalf: a
// path's function is its first caller outside them (a pipe ring is
// pipe_resize_ring's, not ___kmalloc_large_node's, which every large kmalloc
// of the kernel shares). Names as 5.10 to 6.18 spell them.
constexpr std::array<absl::string_view, 24> kMemoryApiFunctions = {
    "kmalloc_order",
    "kmalloc_order_trace",
    "kmalloc_large",
    "kmalloc_large_node",
    "__kmalloc_large_node",
    "___kmalloc_large_node",
    "__kmalloc",
    "__kmalloc_node",
    "__kmalloc_node_track_caller",
    "kmalloc_node_trace",
    "__kmalloc_cache_noprof",
    "kmalloc_trace",
    "kvmalloc_node",
    "__kvmalloc_node",
    "kvmalloc",
    "kvzalloc",
    "__vmalloc_node_range",
    "__vmalloc_area_node",
    "vm_area_alloc_pages",
    "__vmalloc_node",
    "__vmalloc",
    "vmalloc",
    "vzalloc",
    "vmalloc_huge",
};

absl::string_view WithoutNoprof(absl::string_view name) {
  constexpr absl::string_view kSuffix = "_noprof";
  if (absl::EndsWith(name, kSuffix)) name.remove_suffix(kSuffix.size());
  return name;
}

// The name without _noprof and compiler clone suffixes (.constprop.0, .isra.1).
absl::string_view BaseName(absl::string_view function) {
  absl::string_view name = WithoutNoprof(function);
  if (size_t dot = name.find('.'); dot != absl::string_view::npos) name = WithoutNoprof(name.substr(0, dot));
  return name;
}

bool IsAllocatorFunction(absl::string_view name) {
  return std::find(kAllocatorFunctions.begin(), kAllocatorFunctions.end(), name) != kAllocatorFunctions.end();
}

}  // namespace

bool IsAllocatorOrTracingFrame(absl::string_view function) {
  const absl::string_view name = BaseName(function);
  if (IsAllocatorFunction(name)) return true;
  return std::any_of(kTracingPrefixes.begin(), kTracingPrefixes.end(),
                     [&](absl::string_view prefix) { return absl::StartsWith(name, prefix); });
}

std::vector<std::string> KeptRootFirst(const std::vector<std::string>& innermost_first, size_t kept) {
  kept = std::min(kept, innermost_first.size());
  return std::vector<std::string>(innermost_first.rbegin(),
                                  innermost_first.rbegin() + static_cast<std::ptrdiff_t>(kept));
}

std::vector<std::string> CallPathRootFirst(const std::vector<std::string>& innermost_first) {
  size_t first_kept = 0;
  while (first_kept < innermost_first.size() && IsAllocatorOrTracingFrame(innermost_first[first_kept])) {
    ++first_kept;
  }
  return KeptRootFirst(innermost_first, innermost_first.size() - first_kept);
}

std::string FunctionOf(const std::vector<std::string>& root_first) {
  for (auto frame = root_first.rbegin(); frame != root_first.rend(); ++frame) {
    const absl::string_view name = BaseName(*frame);
    // Allocator frames too: a path kept from before a frame joined the
    // allocator list still gets the function a path of today would.
    if (std::find(kMemoryApiFunctions.begin(), kMemoryApiFunctions.end(), name) == kMemoryApiFunctions.end() &&
        !IsAllocatorFunction(name)) {
      return *frame;
    }
  }
  return root_first.empty() ? std::string() : root_first.back();
}

std::string FoldPath(const std::vector<std::string>& root_first) {
  std::string folded;
  for (size_t i = 0; i < root_first.size(); ++i) {
    if (i) folded += ';';
    for (char c : root_first[i]) folded += (c == ';' || c == ' ' || c == '\n' || c == '\t') ? '_' : c;
  }
  return folded;
}

}  // namespace apq
