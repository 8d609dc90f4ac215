#ifndef APQ_AGGREGATOR_FLEET_EPOCH_H_
#define APQ_AGGREGATOR_FLEET_EPOCH_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "aggregator/store.h"
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

 private:
  absl::Status Validate(const apq::v1::Report& report) const;

  uint64_t last_sequence_ = 0;
  absl::flat_hash_map<uint32_t, Series> series_;
  absl::flat_hash_map<uint32_t, apq::v1::StackDefinition> stacks_;
  absl::flat_hash_map<uint32_t, apq::v1::CodeObject> objects_;
  std::optional<apq::v1::HostMemory> memory_;
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

// The fleet's epochs and the store's rows, each way.
// What storing `report`, just applied to `state`, writes: the series it
// changed as they now are, and those it retired.
EpochWrite WriteOf(int64_t epoch_id, const EpochState& state, const apq::v1::Report& report, int64_t received_millis);
// The epoch a Hello names, created or reloaded from the file; fills *state.
absl::StatusOr<Store::EpochInfo> OpenEpochState(Store& store, const apq::v1::Hello& hello, EpochState* state);
// An epoch as stored; DataLoss names a row that does not parse.
absl::StatusOr<EpochState> LoadEpochState(Store& store, int64_t epoch_id);

}  // namespace apq

#endif  // APQ_AGGREGATOR_FLEET_EPOCH_H_
