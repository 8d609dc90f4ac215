#ifndef APQ_COMMON_PPROF_H_
#define APQ_COMMON_PPROF_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace apq {

// A memory profile in apq's terms, for `--format pprof`.
struct ProfileFrame {
  std::string function;
  std::string object;  // its code object: "vmlinux" or a module's name
};

struct ProfileSample {
  std::vector<ProfileFrame> frames;                             // root first, as apq's paths
  double inuse_bytes = 0;                                       // outstanding
  double alloc_bytes = 0;                                       // allocated since tracing started
  std::vector<std::pair<std::string, std::string>> labels;      // process, cgroup, host, class...
  std::vector<std::pair<std::string, int64_t>> numeric_labels;  // pid (pprof -tagfocus=pid=N matches numbers)
};

struct MemoryProfile {
  std::vector<ProfileSample> samples;
  absl::flat_hash_map<std::string, std::string> build_ids;  // object -> build ID, hex; absent: not known
  int64_t time_nanos = 0;
  int64_t duration_nanos = 0;
  std::vector<std::string> comments;
};

// The profile as profile.proto, gzipped: what `go tool pprof` reads. Sample
// types inuse_space and inuse_objects (outstanding bytes and pages), then
// alloc_space and alloc_objects (allocated since start): objects are 4 KiB
// pages. One mapping per code object with its build ID; a function and a
// location per (object, function). Values are rounded to whole bytes.
absl::StatusOr<std::string> GzippedProfile(const MemoryProfile& profile);

// GzippedProfile written to standard output (flushed); DataLoss if it fails.
absl::Status WriteProfile(const MemoryProfile& profile);

}  // namespace apq

#endif  // APQ_COMMON_PPROF_H_
