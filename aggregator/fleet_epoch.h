#ifndef APQ_AGGREGATOR_FLEET_EPOCH_H_
#define APQ_AGGREGATOR_FLEET_EPOCH_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apq/v1/apq.pb.h"
#include "common/page_classes.h"

namespace apq {

// What the aggregator holds of one agent epoch, and the rule that applies
// each report exactly once: a sequence already applied is a duplicate (ack
// it again, change nothing); a full snapshot replaces the state; a delta
// applies only right after the last applied sequence, otherwise the agent
// must send a snapshot. A report is checked whole before anything changes,
// so a malformed one leaves the state as it was.
class EpochState {
 public:
  struct Series {
    apq::v1::SeriesKey key;
    int64_t pages_outstanding = 0;
    uint64_t pages_allocated = 0;
    uint64_t allocations = 0;
    // Pages by PageClass as the agent last classified them; empty until it has.
    std::optional<ClassPageCounts> class_pages;
    // Pages allocated and freed in the last report that changed the series,
    // and that report's sequence: its rates over the epoch's last interval.
    uint64_t interval_pages_allocated = 0, interval_pages_freed = 0;
    uint64_t changed_in_sequence = 0;
  };
  enum class Outcome { kApplied, kDuplicate, kNeedSnapshot };

  EpochState() = default;
  // An epoch as it was stored.
  EpochState(uint64_t last_sequence, absl::flat_hash_map<uint32_t, Series> series,
             absl::flat_hash_map<uint32_t, apq::v1::StackDefinition> stacks,
             absl::flat_hash_map<uint32_t, apq::v1::CodeObject> objects, std::optional<apq::v1::HostMemory> memory)
      : last_sequence_(last_sequence),
        series_(std::move(series)),
        stacks_(std::move(stacks)),
        objects_(std::move(objects)),
        memory_(std::move(memory)) {}

  // Errors (InvalidArgument) name what is wrong with the report.
  absl::StatusOr<Outcome> Apply(const apq::v1::Report& report);

  uint64_t last_sequence() const { return last_sequence_; }
  const absl::flat_hash_map<uint32_t, Series>& series() const { return series_; }
  const absl::flat_hash_map<uint32_t, apq::v1::StackDefinition>& stacks() const { return stacks_; }
  const absl::flat_hash_map<uint32_t, apq::v1::CodeObject>& objects() const { return objects_; }
  // The host's memory at its last classification (what `apq explain` reconciles).
  const std::optional<apq::v1::HostMemory>& memory() const { return memory_; }
  // Seconds between the last two reports by the agent's clock; 0 when the
  // last was a full snapshot (absolute values carry no interval).
  double interval_seconds() const { return interval_millis_ / 1000.0; }
  // Pages a series allocated and freed over that interval (none if the
  // last report did not change it).
  std::pair<uint64_t, uint64_t> PagesInLastInterval(const Series& series) const;

 private:
  absl::Status Validate(const apq::v1::Report& report) const;

  uint64_t last_sequence_ = 0;
  absl::flat_hash_map<uint32_t, Series> series_;
  absl::flat_hash_map<uint32_t, apq::v1::StackDefinition> stacks_;
  absl::flat_hash_map<uint32_t, apq::v1::CodeObject> objects_;
  std::optional<apq::v1::HostMemory> memory_;
  int64_t last_report_millis_ = 0, interval_millis_ = 0;
};

// One agent epoch as the aggregator holds it in memory: who it is and the
// counters it has reported. Only the newest epoch of a host counts.
struct HostEpoch {
  int64_t epoch_id = 0;
  int64_t host_id = 0;
  std::string cluster, host, build_id;
  uint64_t sample_bytes = 0;
  int64_t last_report_ms = 0;
  EpochState state;
};

}  // namespace apq

#endif  // APQ_AGGREGATOR_FLEET_EPOCH_H_
