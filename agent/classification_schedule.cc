#include "agent/classification_schedule.h"

namespace apq {

ClassificationSchedule::Pass ClassificationSchedule::Due(double now_seconds) const {
  if (full_seconds_ <= 0) return Pass::kNone;
  if (passes_ == 0) return Pass::kFull;
  const double allowed = cpu_share_ * (now_seconds - first_seconds_);
  if (now_seconds - *last_full_seconds_ >= full_seconds_ && seconds_ + last_full_cost_ <= allowed) return Pass::kFull;
  return seconds_ <= allowed ? Pass::kChanged : Pass::kNone;
}

void ClassificationSchedule::Done(Pass pass, double now_seconds, double cost_seconds) {
  if (pass == Pass::kNone) return;
  if (pass == Pass::kFull) {
    last_full_seconds_ = now_seconds;
    last_full_cost_ = cost_seconds;
  }
  if (passes_++ == 0) {
    first_seconds_ = now_seconds;  // the start-up pass: not counted
    return;
  }
  seconds_ += cost_seconds;
}

}  // namespace apq
