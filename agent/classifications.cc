#include "agent/classifications.h"

#include "common/log.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace apq {

std::optional<ClassifiedPages> Classifications::MaybeClassify(TrackerSnapshot* snapshot, bool wanted) {
  classifier_->Learn(*snapshot);
  const ClassificationSchedule::Pass pass =
      wanted ? schedule_.Due(snapshot->monotonic_seconds) : ClassificationSchedule::Pass::kNone;
  if (pass == ClassificationSchedule::Pass::kNone) return std::nullopt;
  absl::StatusOr<ClassifiedPages> classified = Classify(snapshot, pass == ClassificationSchedule::Pass::kFull);
  if (classified.ok()) {
    schedule_.Done(pass, snapshot->monotonic_seconds, snapshot->page_classes->seconds);
    return std::move(*classified);
  }
  if (classified.status().message() != last_error_) {
    last_error_ = std::string(classified.status().message());
    APQ_LOG() << "pages not classified (shown as not yet classified): " << last_error_;
  }
  return std::nullopt;
}

absl::StatusOr<ClassifiedPages> Classifications::Classify(TrackerSnapshot* snapshot, bool full) {
  APQ_RETURN_IF_ERROR(tracker_->ClassifyPages(snapshot, full));
  absl::StatusOr<std::string> meminfo = ReadFileToString("/proc/meminfo");
  if (!meminfo.ok()) return meminfo.status();
  return classifier_->Classify(*snapshot, *meminfo, UnixMillis());
}

}  // namespace apq
