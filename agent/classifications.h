#ifndef APQ_AGENT_CLASSIFICATIONS_H_
#define APQ_AGENT_CLASSIFICATIONS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "agent/bpf_page_tracker.h"
#include "agent/classification_schedule.h"
#include "agent/fleet_classes.h"
#include "agent/report_stream.h"
#include "agent/tracker_snapshot.h"

namespace apq {

// Classifies snapshots as ClassificationSchedule says: each report's own
// new pages at once, every page every full_seconds, within cpu_share of a
// core. The same for a streaming agent and for --local.
class Classifications {
 public:
  Classifications(BpfPageTracker* tracker, FleetClassifier* classifier, double full_seconds, double cpu_share)
      : tracker_(tracker), classifier_(classifier), schedule_(full_seconds, cpu_share) {}

  // The classification of `snapshot` when one is due (and `wanted`: a
  // report nobody reads need not be classified); nullopt otherwise, or when
  // it fails (said once per kind of failure, and tried again next time).
  // Every snapshot must pass here: its new stacks' classes are learnt.
  std::optional<ClassifiedPages> MaybeClassify(TrackerSnapshot* snapshot, bool wanted = true);
  uint64_t done() const { return schedule_.passes(); }
  double seconds() const { return schedule_.seconds(); }  // the passes' cost in all
  // Why the last pass failed; empty if none has.
  const std::string& last_error() const { return last_error_; }

 private:
  absl::StatusOr<ClassifiedPages> Classify(TrackerSnapshot* snapshot, bool full);

  BpfPageTracker* tracker_;
  FleetClassifier* classifier_;
  ClassificationSchedule schedule_;
  std::string last_error_;
};

}  // namespace apq

#endif  // APQ_AGENT_CLASSIFICATIONS_H_
