#include "aggregator/fleet_epoch.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/page_classes.h"
#include "page_tracker.h"
#include "common/status_macros.h"

namespace apq {
namespace {

// Bounds on what one report may carry; an agent within its tables never
// comes near them.
constexpr int kMaxFramesPerStack = 128;
constexpr size_t kMaxCommBytes = 64, kMaxCgroupBytes = 4096, kMaxObjectNameBytes = 256;
// Bounds on what one epoch may hold, so no stream can grow the aggregator
// without limit: an agent's tables hold at most 2^22 owners (--max-owners)
// and 2^22 stacks (--max-stacks), and a kernel far fewer modules.
constexpr int kMaxMeminfoFields = 512;
constexpr size_t kMaxMeminfoNameBytes = 64;
constexpr size_t kMaxObjectsPerEpoch = 1 << 13, kMaxStacksPerEpoch = 1 << 22, kMaxSeriesPerEpoch = 1 << 22;

// How many of the ids in `here` are not yet in `known` (all of them for a snapshot).
template <typename Map>
size_t NewIds(const absl::flat_hash_set<uint32_t>& here, const Map& known, bool snapshot) {
  if (snapshot) return here.size();
  size_t fresh = 0;
  for (uint32_t id : here) fresh += known.contains(id) ? 0 : 1;
  return fresh;
}

absl::Status ValidateClasses(uint32_t series_id, const apq::v1::PagesByClass& split) {
  uint32_t seen = 0;
  for (const apq::v1::ClassPages& c : split.classes()) {
    if (!apq::v1::PageClass_IsValid(c.page_class())) {
      return absl::InvalidArgumentError(absl::StrCat("series ", series_id, ": unknown page class ", c.page_class()));
    }
    const uint32_t bit = 1u << c.page_class();
    if (seen & bit) return absl::InvalidArgumentError(absl::StrCat("series ", series_id, ": a page class twice"));
    seen |= bit;
  }
  return absl::OkStatus();
}

absl::Status ValidateMemory(const apq::v1::HostMemory& memory) {
  if (memory.meminfo_size() > kMaxMeminfoFields) {
    return absl::InvalidArgumentError(absl::StrCat("host memory: ", memory.meminfo_size(), " meminfo fields"));
  }
  for (const apq::v1::MeminfoField& field : memory.meminfo()) {
    if (field.name().size() > kMaxMeminfoNameBytes)
      return absl::InvalidArgumentError("host memory: field name too long");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EpochState::Validate(const apq::v1::Report& report) const {
  absl::flat_hash_set<uint32_t> objects_here, stacks_here;
  for (const apq::v1::CodeObject& object : report.objects()) {
    if (object.name().size() > kMaxObjectNameBytes || object.build_id().size() > kMaxObjectNameBytes) {
      return absl::InvalidArgumentError(absl::StrCat("code object ", object.id(), ": name or build ID too long"));
    }
    objects_here.insert(object.id());
  }
  for (const apq::v1::StackDefinition& stack : report.stacks()) {
    if (stack.frames_size() > kMaxFramesPerStack) {
      return absl::InvalidArgumentError(absl::StrCat("stack ", stack.id(), " has ", stack.frames_size(), " frames"));
    }
    if (stack.id() >= APQ_STACK_LOST) {
      return absl::InvalidArgumentError(absl::StrCat("stack id ", stack.id(), " is reserved"));
    }
    for (const apq::v1::Frame& frame : stack.frames()) {
      if (!objects_here.contains(frame.object_id()) &&
          (report.full_snapshot() || !objects_.contains(frame.object_id()))) {
        return absl::InvalidArgumentError(
            absl::StrCat("stack ", stack.id(), " refers to unknown code object ", frame.object_id()));
      }
    }
    stacks_here.insert(stack.id());
  }
  absl::flat_hash_set<uint32_t> series_here;
  for (const apq::v1::SeriesDelta& delta : report.series()) {
    if (!series_here.insert(delta.series_id()).second) {
      return absl::InvalidArgumentError(absl::StrCat("series ", delta.series_id(), " appears twice"));
    }
    if (delta.has_pages_by_class()) {
      APQ_RETURN_IF_ERROR(ValidateClasses(delta.series_id(), delta.pages_by_class()));
    }
    bool known = !report.full_snapshot() && series_.contains(delta.series_id());
    if (!delta.has_key() && !known) {
      return absl::InvalidArgumentError(absl::StrCat("series ", delta.series_id(), " has no key"));
    }
    if (delta.has_key()) {
      if (delta.key().comm().size() > kMaxCommBytes || delta.key().cgroup().size() > kMaxCgroupBytes) {
        return absl::InvalidArgumentError(absl::StrCat("series ", delta.series_id(), ": comm or cgroup too long"));
      }
      uint32_t stack = delta.key().stack_id();
      bool stack_known = stacks_here.contains(stack) || (!report.full_snapshot() && stacks_.contains(stack));
      if (stack < APQ_STACK_LOST && !stack_known) {
        return absl::InvalidArgumentError(
            absl::StrCat("series ", delta.series_id(), " refers to unknown stack ", stack));
      }
    }
  }
  APQ_RETURN_IF_ERROR(ValidateMemory(report.memory()));
  const bool snapshot = report.full_snapshot();
  const struct {
    const char* what;
    size_t held, added, limit;
  } totals[] = {
      {"code objects", snapshot ? 0 : objects_.size(), NewIds(objects_here, objects_, snapshot), kMaxObjectsPerEpoch},
      {"stacks", snapshot ? 0 : stacks_.size(), NewIds(stacks_here, stacks_, snapshot), kMaxStacksPerEpoch},
      {"series", snapshot ? 0 : series_.size(), NewIds(series_here, series_, snapshot), kMaxSeriesPerEpoch},
  };
  for (const auto& total : totals) {
    if (total.held + total.added > total.limit) {
      return absl::InvalidArgumentError(absl::StrCat("the epoch would hold ", total.held + total.added, " ", total.what,
                                                     ", over the aggregator's limit of ", total.limit));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<EpochState::Outcome> EpochState::Apply(const apq::v1::Report& report) {
  if (report.sequence() == 0) return absl::InvalidArgumentError("report sequence 0");
  if (report.sequence() <= last_sequence_) return Outcome::kDuplicate;
  if (!report.full_snapshot() && report.sequence() != last_sequence_ + 1) return Outcome::kNeedSnapshot;
  APQ_RETURN_IF_ERROR(Validate(report));

  if (report.full_snapshot()) {
    series_.clear();
    stacks_.clear();
    objects_.clear();
    memory_.reset();
  }
  // A clock that went back, or a first report: no interval.
  // Hostile times must not overflow: a difference that does counts as none.
  int64_t since_last = 0;
  if (__builtin_sub_overflow(report.unix_millis(), last_report_millis_, &since_last)) since_last = 0;
  interval_millis_ = !report.full_snapshot() && last_report_millis_ != 0 && since_last > 0 ? since_last : 0;
  last_report_millis_ = report.unix_millis();
  if (report.has_memory()) memory_ = report.memory();
  for (const apq::v1::CodeObject& object : report.objects()) objects_.insert_or_assign(object.id(), object);
  for (const apq::v1::StackDefinition& stack : report.stacks()) stacks_.insert_or_assign(stack.id(), stack);
  for (const apq::v1::SeriesDelta& delta : report.series()) {
    Series& series = series_[delta.series_id()];
    if (delta.has_key()) series.key = delta.key();
    // Unsigned arithmetic: hostile values wrap instead of trapping.
    series.pages_outstanding = static_cast<int64_t>(static_cast<uint64_t>(series.pages_outstanding) +
                                                    static_cast<uint64_t>(delta.pages_outstanding()));
    series.pages_allocated += delta.pages_allocated();
    series.allocations += delta.allocations();
    // Freed = allocated less the change in outstanding; hostile values
    // that would make it negative count as none.
    const int64_t freed =
        static_cast<int64_t>(delta.pages_allocated() - static_cast<uint64_t>(delta.pages_outstanding()));
    series.interval_pages_allocated = delta.pages_allocated();
    series.interval_pages_freed = freed > 0 ? static_cast<uint64_t>(freed) : 0;
    series.changed_in_sequence = report.sequence();
    if (delta.has_pages_by_class()) series.class_pages = PagesOfClasses(delta.pages_by_class());
  }
  for (uint32_t id : report.retired_series()) series_.erase(id);
  last_sequence_ = report.sequence();
  return Outcome::kApplied;
}

std::pair<uint64_t, uint64_t> EpochState::PagesInLastInterval(const Series& series) const {
  if (interval_millis_ == 0 || series.changed_in_sequence != last_sequence_) return {0, 0};
  return {series.interval_pages_allocated, series.interval_pages_freed};
}

}  // namespace apq
