#ifndef APQ_AGENT_REPORT_H_
#define APQ_AGENT_REPORT_H_

#include <array>
#include <functional>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/tracker_snapshot.h"
#include "apq/v1/apq.pb.h"
#include "common/cgroup_names.h"
#include "common/kernel_symbols.h"
#include "common/page_classes.h"
#include "common/page_census.h"
#include "common/pprof.h"
#include "common/sampling.h"

#include "common/display.h"

namespace apq {

// What one process, in one cgroup, holds on a path.
struct ProcessShare {
  uint32_t tgid = 0;  // 0: the idle task (or an interrupt that hit it)
  std::string comm;
  uint64_t cgroup_id = 0;
  std::string cgroup;  // path below the cgroup v2 mount
  double bytes = 0;
  std::array<double, kNumPageClasses> class_bytes{};  // when classified: all classes
};

// One kernel call path (allocator frames removed), summed over processes.
struct PathStats {
  std::vector<std::string> frames;         // root first
  std::vector<std::string> frame_objects;  // each frame's code object: "vmlinux", a module, "" (not code)
  std::string folded;                      // frames joined by ';'
  double bytes_outstanding = 0;            // exact, or the unbiased estimate when sampled
  double variance = 0;                     // of the estimate; 0 in exact mode
  double bytes_allocated = 0;              // since tracing started
  double bytes_freed = 0;
  double alloc_bytes_per_second = 0;  // over the last interval
  double free_bytes_per_second = 0;
  std::vector<ProcessShare> processes;  // largest first
  // By how meminfo counts them (when the snapshot was classified), all
  // classes, whatever the report's class filter.
  std::array<double, kNumPageClasses> class_bytes{};
  double standard_error() const;
};

// The loss counters of a snapshot, as the wire carries them too
// (recursion_misses -1: skipped tracepoint runs could not be counted).
apq::v1::Losses LossesOf(const TrackerSnapshot& snapshot);

struct Report {
  uint64_t sample_bytes = 0;  // 0: exact mode
  double seconds_tracing = 0;
  double interval_seconds = 0;  // of the rates; 0 before a second snapshot
  uint64_t alloc_events = 0, alloc_pages = 0, free_events = 0, free_pages = 0, failed_allocs = 0;
  uint64_t sampled_allocs = 0;
  uint64_t bulk_pages = 0, contig_pages = 0, migrated_pages = 0;  // seen through fentry/fexit
  // Exact, whatever the mode: pages allocated since start and not yet freed.
  uint64_t tracked_bytes_outstanding = 0;
  uint64_t unsampled_bytes_outstanding = 0;  // part of the above whose stack was not walked
  size_t total_paths = 0;
  std::vector<PathStats> paths;  // the top ones, largest first
  apq::v1::Losses losses;
  std::vector<std::string> hooked_paths;
  std::vector<std::string> blind_paths;
  std::optional<PageCensus> census_at_start;
  // Of the census's unflagged pages, those charged to a memory cgroup, by
  // its name, largest first (bytes).
  std::vector<std::pair<std::string, uint64_t>> held_at_start_by_cgroup;
  // Processes whose open pipes and sockets held pages at start, largest
  // first; or why they could not be found.
  std::vector<apq::v1::StartHolder> held_at_start_holders;
  std::string held_at_start_holders_unavailable;
  // Set when the snapshot was classified: the filter applied to paths and
  // processes, the host's bytes by class over every path, and the walk.
  std::optional<ClassFilter> class_filter;
  std::array<double, kNumPageClasses> class_bytes{};
  std::array<double, kNumPageClasses> class_variance{};  // of the estimates; 0 in exact mode
  uint64_t free_pages_still_owned = 0;
  double classification_seconds = 0;
  // Hidden and visible views: the bytes whose class is not known (a stack
  // not known, or pages the walk did not class), in no path; and on how
  // many paths.
  double unclassified_bytes = 0;
  size_t unclassified_paths = 0;

  std::string mode() const;
};

// The class of an owner's unflagged pages, the one rule of the local report
// and of the fleet's classification: its path's class (PathClassOf of the
// path, when the path is known), and unknown where the path is not (the
// overflow owner, a lost or unsampled stack, a stack not read yet).
PageClass UnflaggedClassOf(uint64_t owner_id, uint32_t stack_id, std::optional<PageClass> path_class);

// Turns snapshots into reports; keeps the symbolized path of each stack id
// (a snapshot carries a stack's frames only once).
// A stack's call path: function names root first, the allocator's own
// frames dropped ("[page allocator]" when nothing else is left).
std::vector<std::string> CallPathOfStack(const KernelSymbols& symbols, const std::vector<uint64_t>& innermost_first);
// The same with each frame's code object ("vmlinux" or a module's name).
struct StackPath {
  std::vector<std::string> frames, objects;  // root first, as long as each other
};
StackPath StackPathOf(const KernelSymbols& symbols, const std::vector<uint64_t>& innermost_first);

class ReportBuilder {
 public:
  // cgroups may be null: cgroups are then named by id.
  ReportBuilder(const KernelSymbols* symbols, CgroupNames* cgroups, SamplingPlan sampling, double start_seconds);

  // Symbolizes the snapshot's new stacks. Every snapshot taken must pass
  // through Learn or Build, or its stacks stay unnamed.
  void Learn(const TrackerSnapshot& snapshot);
  // Learns `now`, then reports. previous may be null (no rates then). top_n 0
  // means all paths.
  Report Build(const TrackerSnapshot& now, const TrackerSnapshot* previous, size_t top_n);
  // Applied to classified snapshots; unclassified ones show all pages.
  void set_class_filter(ClassFilter filter) { class_filter_ = filter; }

 private:
  const StackPath& PathOf(uint32_t stack_id) const;

  const KernelSymbols* symbols_;
  CgroupNames* cgroups_;
  SamplingPlan sampling_;
  double start_seconds_;
  ClassFilter class_filter_ = apq::v1::CLASS_FILTER_ALL;
  absl::flat_hash_map<uint32_t, StackPath> paths_by_stack_;
};

std::string FormatTable(const Report& report, const TableStyle& style);
std::string FormatJson(const Report& report);
// One line per path: "root;...;leaf BYTES"; paths with no bytes are left out.
std::string FormatFolded(const Report& report);
// The report as a pprof memory profile (common/pprof.h): a sample per path
// and process holding pages (split by class when classified, the report's
// class filter applied), with process, pid, cgroup and class labels, and a
// sample per path with its bytes allocated since start (not kept per
// process). build_id_of(module) names each code object's build ID ("" is
// the kernel image).
MemoryProfile ProfileOf(const Report& report, const std::function<std::string(const std::string&)>& build_id_of);

// Loss and coverage lines, for stderr beside the folded output.
std::string FormatLossSummary(const Report& report);

}  // namespace apq

#endif  // APQ_AGENT_REPORT_H_
