#ifndef APQ_AGENT_REPORT_STREAM_H_
#define APQ_AGENT_REPORT_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/tracker_snapshot.h"
#include "apq/v1/apq.pb.h"
#include "common/page_classes.h"

namespace apq {

// Maps a kernel return address to a frame of the wire (code object, offset),
// and reports the code objects it named for the first time.
class FrameEncoder {
 public:
  virtual ~FrameEncoder() = default;
  virtual apq::v1::Frame Encode(uint64_t ip) = 0;
  // Objects first named since the last call.
  virtual std::vector<apq::v1::CodeObject> TakeNewObjects() = 0;
  virtual std::vector<apq::v1::CodeObject> AllObjects() const = 0;
};

// A classification of the snapshot being reported: each owner's pages by
// class (owners absent hold none) and the host's memory at that moment.
struct ClassifiedPages {
  absl::flat_hash_map<uint64_t, ClassPageCounts> owners;  // by owner id (OwnerSerial)
  apq::v1::HostMemory memory;
};

// Turns tracker snapshots into the Reports of one epoch: counter deltas
// since the previous report, stack frames and series keys the first time
// they are sent, sequence numbers 1, 2, 3... Reports stay queued until
// acknowledged, for resending after a reconnect. When the queue outgrows its
// byte budget (the aggregator is away for long), the queued deltas are
// dropped and the next report is a full snapshot of absolute values: counts
// are never lost, only their history in between.
//
// A series that holds no pages and stays unchanged for kIdleReportsToRetire
// reports is retired: the report says so and the aggregator forgets it, so
// a host that runs many short-lived processes does not grow the
// aggregator's state without bound. If its owner allocates again, it comes
// back as a new series. An owner the tracker retired (absent from its
// snapshot) is retired on the wire too.
class ReportStream {
 public:
  // cgroup_name names a cgroup id for the wire (its path); null sends the id.
  ReportStream(FrameEncoder* frames, size_t budget_bytes, std::function<std::string(uint64_t)> cgroup_name = nullptr);

  // Builds the next report from a snapshot and queues it. Series whose stack
  // has not been delivered are held back (with their counts) until it is.
  // classified: null when this snapshot was not classified.
  void Add(const TrackerSnapshot& snapshot, const apq::v1::Losses& losses, const apq::v1::Coverage& coverage,
           int64_t unix_millis, const ClassifiedPages* classified = nullptr);
  // The aggregator stored every report up to sequence.
  void Acknowledge(uint64_t sequence);
  // The aggregator lost this epoch's state: the next report is a snapshot.
  void RequestSnapshot() { snapshot_due_ = true; }

  // Reports to send (after a reconnect: all of them), oldest first.
  const std::deque<apq::v1::Report>& unacknowledged() const { return queue_; }
  size_t queued_bytes() const { return queued_bytes_; }
  uint64_t reports_dropped() const { return reports_dropped_; }
  uint64_t last_sequence() const { return next_sequence_ - 1; }

  static constexpr int kIdleReportsToRetire = 3;

 private:
  struct Sent {
    apq_owner_counters counters{};           // as of the last report that carried them
    uint32_t series_id = 0;                  // 0: no series (retired, or never sent)
    int idle_reports = 0;                    // reports since it last changed, while it holds no pages
    uint64_t seen_in_build = 0;              // the last Build whose snapshot had this owner
    std::optional<ClassPageCounts> classes;  // as last sent; none since the series began
  };
  apq::v1::Report Build(const TrackerSnapshot& snapshot, bool full, const ClassifiedPages* classified);

  FrameEncoder* frames_;
  size_t budget_bytes_;
  std::function<std::string(uint64_t)> cgroup_name_;
  uint64_t next_sequence_ = 1;
  bool snapshot_due_ = false;
  uint64_t reports_dropped_ = 0;
  std::deque<apq::v1::Report> queue_;
  size_t queued_bytes_ = 0;
  // Every stack of the epoch, encoded (snapshots resend them all).
  absl::flat_hash_map<uint32_t, apq::v1::StackDefinition> stacks_;
  std::vector<uint32_t> new_stack_ids_;
  absl::flat_hash_map<uint64_t, Sent> sent_;  // by owner id
  uint32_t next_series_id_ = 1;
  uint64_t builds_ = 0;
  std::optional<apq::v1::HostMemory> memory_;  // the last classification's
};

}  // namespace apq

#endif  // APQ_AGENT_REPORT_STREAM_H_
