#ifndef APQ_AGENT_CLASSIFICATION_SCHEDULE_H_
#define APQ_AGENT_CLASSIFICATION_SCHEDULE_H_

#include <cstdint>
#include <optional>

namespace apq {

// Seconds between full classifications by default (--classify-interval).
inline constexpr double kDefaultFullClassifySeconds = 30;
// A streaming agent's classification cost, at most, over its life: this
// share of one core.
inline constexpr double kFleetClassifyCpuShare = 0.01;

// When to classify the tracker's pages (BpfPageTracker::ClassifyPages). A
// report is classified as it is taken, reading only what changed since the
// last pass, so its new pages are never shown as hidden or visible before
// they are known to be; every full_seconds a pass reads every page again.
// The passes after the first cost at most cpu_share of the time since the
// first: a full pass waits until it fits (by the last one's cost), and a
// changed pass runs while the passes are within the share. The first pass,
// at start, is not counted: like loading the programs it is paid once, and
// counting it would leave every page unclassified for the minutes (on a
// large host) the share takes to pay it back.
class ClassificationSchedule {
 public:
  enum class Pass { kNone, kChanged, kFull };

  // full_seconds 0: never classify.
  ClassificationSchedule(double full_seconds, double cpu_share) : full_seconds_(full_seconds), cpu_share_(cpu_share) {}

  Pass Due(double now_seconds) const;
  // A pass due at now_seconds ran, and took cost_seconds.
  void Done(Pass pass, double now_seconds, double cost_seconds);

  uint64_t passes() const { return passes_; }
  double seconds() const { return seconds_; }  // the passes' cost in all

 private:
  double full_seconds_, cpu_share_;
  double first_seconds_ = 0;
  std::optional<double> last_full_seconds_;
  double last_full_cost_ = 0;
  uint64_t passes_ = 0;
  double seconds_ = 0;
};

}  // namespace apq

#endif  // APQ_AGENT_CLASSIFICATION_SCHEDULE_H_
