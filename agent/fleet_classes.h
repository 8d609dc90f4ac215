#ifndef APQ_AGENT_FLEET_CLASSES_H_
#define APQ_AGENT_FLEET_CLASSES_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/report_stream.h"
#include "agent/tracker_snapshot.h"
#include "common/kernel_symbols.h"

namespace apq {

// What a fleet agent sends of a classified snapshot: each owner's pages by
// class (its unflagged pages in the class of its call path) and the host's
// memory at that moment.
class FleetClassifier {
 public:
  // held_at_start_bytes: PageCensus::HiddenEstimate() at start in bytes;
  // nullopt when the census failed. holders: FindStartHolders() at start.
  FleetClassifier(const KernelSymbols* symbols, std::optional<uint64_t> held_at_start_bytes,
                  absl::StatusOr<std::vector<apq::v1::StartHolder>> holders)
      : symbols_(symbols), held_at_start_bytes_(held_at_start_bytes), holders_(std::move(holders)) {}

  // Learns the class of every stack a snapshot delivers; every snapshot
  // must pass here (a stack is delivered once).
  void Learn(const TrackerSnapshot& snapshot);
  // `snapshot` must be classified; `meminfo` is /proc/meminfo read right after.
  absl::StatusOr<ClassifiedPages> Classify(const TrackerSnapshot& snapshot, absl::string_view meminfo,
                                           int64_t unix_millis) const;

 private:
  const KernelSymbols* symbols_;
  std::optional<uint64_t> held_at_start_bytes_;
  absl::StatusOr<std::vector<apq::v1::StartHolder>> holders_;
  absl::flat_hash_map<uint32_t, PageClass> class_of_stack_;
};

}  // namespace apq

#endif  // APQ_AGENT_FLEET_CLASSES_H_
