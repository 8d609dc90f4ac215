#include "agent/classification_schedule.h"

namespace apq {

ClassificationSchedule::Pass ClassificationSchedule::Due(double now_seconds) const {
  if (full_seconds_ <= 0) return Pass::kNone;
  if (passes_ > 0 && seconds_ > cpu_share_ * (now_seconds - first_seconds_)) return Pass::kNone;
  const bool full_due = !last_full_seconds_ || now_seconds - *last_full_seconds_ >= full_seconds_;
  return full_due ? Pass::kFull : Pass::kChanged;
}

void ClassificationSchedule::Done(Pass pass, double now_seconds, double cost_seconds) {
  if (pass == Pass::kNone) return;
  if (passes_ == 0) first_seconds_ = now_seconds;
  if (pass == Pass::kFull) last_full_seconds_ = now_seconds;
  ++passes_;
  seconds_ += cost_seconds;
}

}  // namespace apq
