#ifndef APQ_AGENT_BPF_PAGE_TRACKER_H_
#define APQ_AGENT_BPF_PAGE_TRACKER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/tracker_snapshot.h"
#include "common/sampling.h"

namespace apq {

struct BpfTrackerOptions {
  SamplingPlan sampling;
  uint32_t max_owners = 1 << 18;  // (stack, process, cgroup, order) combinations
  uint32_t max_stacks = 1 << 15;  // distinct kernel stacks
};

// What this kernel lets the tracker see, decided before load.
struct KernelCoverage {
  std::string program_type;  // of the allocation and free hooks
  bool fentry_allowed = false;
  // Paths without tracepoints that are hooked, each with its hook.
  std::vector<std::string> hooked_paths;
  // Allocation paths whose pages the tracker cannot see on this kernel, each
  // with the reason.
  std::vector<std::string> blind_paths;
};

// Loads and attaches the page tracker; detaches and frees it when destroyed.
class BpfPageTracker : public PageTrackerSource {
 public:
  static absl::StatusOr<std::unique_ptr<BpfPageTracker>> Start(const BpfTrackerOptions& options);
  ~BpfPageTracker() override;

  absl::StatusOr<TrackerSnapshot> Snapshot() override;
  // Sets snapshot->page_classes: every owned page's class, from the pfn ->
  // owner table and /proc/kpageflags. Only the parts of the table whose
  // owners changed since the last call are read again, unless `full`
  // (PageClassTally).
  absl::Status ClassifyPages(TrackerSnapshot* snapshot, bool full);
  const KernelCoverage& coverage() const { return coverage_; }

  // Snapshots an owner must hold no pages and stay unchanged before its id
  // is retired (then reused for another owner).
  static constexpr int kIdleSnapshotsToRetire = 6;

 private:
  struct State;
  explicit BpfPageTracker(std::unique_ptr<State> state);
  absl::Status RefreshTables(uint64_t stacks_created, uint64_t owners_created);
  // Runs of the kmem tracepoint programs the kernel skipped: its own count
  // (6.7+), else the witnesses' (page_tracker.h).
  absl::StatusOr<int64_t> SkippedTracepointRuns() const;

  std::unique_ptr<State> state_;
  KernelCoverage coverage_;
};

// Checks that BPF tracking can work here (BTF, privileges), with one line
// saying what is missing.
absl::Status CheckKernelPrerequisites(const std::string& btf_path = "/sys/kernel/btf/vmlinux");

// Makes the kmem tracepoints reachable: mounts tracefs where libbpf looks
// for it (debugfs_tracing if that directory exists, else tracefs) unless it
// is there already, as on hosts that boot without systemd. True if it mounted.
absl::StatusOr<bool> EnsureTracefs(const std::string& debugfs_tracing = "/sys/kernel/debug/tracing",
                                   const std::string& tracefs = "/sys/kernel/tracing");

// Whether a kernel of this release (uname -r) counts the runs of a classic
// tracepoint program it skips for recursion (6.7 and later).
bool CountsTracepointRecursionMisses(absl::string_view release);

// Highest pfn + 1 over all zones, from /proc/zoneinfo text.
absl::StatusOr<uint64_t> PageTableSizeFromZoneinfo(absl::string_view zoneinfo);

}  // namespace apq

#endif  // APQ_AGENT_BPF_PAGE_TRACKER_H_
