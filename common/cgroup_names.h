#ifndef APQ_COMMON_CGROUP_NAMES_H_
#define APQ_COMMON_CGROUP_NAMES_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace apq {

// Names cgroup v2 ids (what bpf_get_current_cgroup_id returns: the inode
// number of the cgroup's directory) as paths below the cgroup mount.
class CgroupNames {
 public:
  // mount: where cgroup2 is mounted; empty names every cgroup by id.
  explicit CgroupNames(std::string mount) : mount_(std::move(mount)) {}
  // The cgroup2 mount of this system (/sys/fs/cgroup, or
  // /sys/fs/cgroup/unified on hybrid v1/v2 systems).
  CgroupNames();
  // Names memory cgroups by the inode /proc/kpagecgroup gives: the cgroup v1
  // memory hierarchy on hybrid systems, else cgroup2.
  static CgroupNames ForMemoryCgroups();

  // The cgroup's path ("/" for the root, "/system.slice/x.service"), or
  // "cgroup <id>" when no directory has that id (removed, or cgroup v1).
  // An unknown id rescans the hierarchy, at most once a second, so stale
  // ids cannot make every lookup walk the tree.
  std::string NameOf(uint64_t id);

 private:
  void Scan();

  std::string mount_;
  absl::flat_hash_map<uint64_t, std::string> names_;
  std::optional<std::chrono::steady_clock::time_point> last_scan_;
};

// The mount point of the first cgroup2 filesystem in /proc/self/mountinfo
// text, or "" if there is none.
std::string Cgroup2MountFromMountinfo(absl::string_view mountinfo);
// Where the memory controller's hierarchy is mounted: a cgroup v1 mount with
// the memory option, else the cgroup2 mount; "" if neither.
std::string MemoryCgroupMountFromMountinfo(absl::string_view mountinfo);

}  // namespace apq

#endif  // APQ_COMMON_CGROUP_NAMES_H_
