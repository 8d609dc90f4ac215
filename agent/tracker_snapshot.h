#ifndef APQ_AGENT_TRACKER_SNAPSHOT_H_
#define APQ_AGENT_TRACKER_SNAPSHOT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/page_classes.h"
#include "page_tracker.h"

namespace apq {

inline uint64_t PagesFreed(const apq_owner_counters& counters) {
  int64_t freed = static_cast<int64_t>(counters.pages_allocated) - counters.pages_outstanding;
  return freed > 0 ? static_cast<uint64_t>(freed) : 0;
}

// An owner as consumers see it: the BPF owner id in the low half, how many
// times that id was retired and reused in the high half, so that a reused id
// is a new owner, never a continuation of the old one.
inline uint64_t OwnerSerial(uint32_t id, uint32_t reuses) { return (uint64_t{reuses} << 32) | id; }

// Everything the kernel side knows at one moment, copied out of the BPF
// maps. Counters are cumulative since the owner was created. An owner
// absent from a later snapshot was retired: it held no pages.
struct TrackerSnapshot {
  struct Owner {
    uint64_t id = 0;  // OwnerSerial
    apq_owner_key key{};
    apq_owner_counters counters{};
  };
  double monotonic_seconds = 0;
  int64_t unix_millis = 0;    // the same moment by the wall clock: the report's time, so rates divide by it
  std::vector<Owner> owners;  // includes the overflow owner when it holds pages
  // Stacks first seen by this snapshot: id -> return addresses, innermost
  // first. A stack's frames are delivered once; consumers keep what they need.
  absl::flat_hash_map<uint32_t, std::vector<uint64_t>> new_stacks;
  absl::flat_hash_map<uint32_t, std::string> process_names;  // by tgid
  std::array<uint64_t, APQ_NR_COUNTERS> counters{};
  // Tracepoint program runs the kernel skipped (bpf_prog_active raised on
  // that CPU): counted by the kernel from 6.7, by witnesses before.
  int64_t recursion_misses = -1;
  // How meminfo counts the owned pages, when this snapshot was classified.
  struct PageClassification {
    absl::flat_hash_map<uint32_t, OwnerPageClasses> owners;  // by BPF owner id (low half of the serial)
    uint64_t free_pages_still_owned = 0;                     // free by their flags: a free not seen (yet)
    uint64_t pfns_read = 0;                                  // of /proc/kpageflags, by this pass
    bool full = false;   // every page's flags read again, not only the changed ones'
    double seconds = 0;  // what the walk cost
  };
  std::optional<PageClassification> page_classes;
};

// The narrow interface to the kernel: the real one loads BPF programs, tests
// use a fake.
class PageTrackerSource {
 public:
  virtual ~PageTrackerSource() = default;
  virtual absl::StatusOr<TrackerSnapshot> Snapshot() = 0;
};

}  // namespace apq

#endif  // APQ_AGENT_TRACKER_SNAPSHOT_H_
