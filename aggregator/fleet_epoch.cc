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
    if (delta.has_pages_by_class()) series.class_pages = PagesOfClasses(delta.pages_by_class());
  }
  for (uint32_t id : report.retired_series()) series_.erase(id);
  last_sequence_ = report.sequence();
  return Outcome::kApplied;
}

EpochWrite WriteOf(int64_t epoch_id, const EpochState& state, const apq::v1::Report& report, int64_t received_millis) {
  EpochWrite write;
  write.epoch_id = epoch_id;
  write.sequence = report.sequence();
  write.received_millis = received_millis;
  write.replaces_epoch = report.full_snapshot();
  for (const apq::v1::CodeObject& o : report.objects()) write.rows.objects.push_back({o.id(), o.name(), o.build_id()});
  for (const apq::v1::StackDefinition& s : report.stacks()) {
    write.rows.stacks.push_back({s.id(), s.SerializeAsString()});
  }
  for (const apq::v1::SeriesDelta& delta : report.series()) {
    auto series = state.series().find(delta.series_id());
    if (series == state.series().end()) continue;
    const EpochState::Series& now = series->second;
    EpochRows::Series& row = write.rows.series.emplace_back();
    row.id = delta.series_id();
    row.key = now.key.SerializeAsString();
    row.pages_outstanding = now.pages_outstanding;
    row.pages_allocated = now.pages_allocated;
    row.allocations = now.allocations;
    if (now.class_pages) row.class_pages = ClassesOfPages(*now.class_pages).SerializeAsString();
  }
  write.retired_series.assign(report.retired_series().begin(), report.retired_series().end());
  write.losses = report.losses().SerializeAsString();
  write.coverage = report.coverage().SerializeAsString();
  // The stored memory follows EpochState: set by a report that carries it,
  // cleared by a snapshot that does not.
  write.memory_changes = report.has_memory() || report.full_snapshot();
  if (report.has_memory()) write.memory = report.memory().SerializeAsString();
  return write;
}

absl::StatusOr<Store::EpochInfo> OpenEpochState(Store& store, const apq::v1::Hello& hello, EpochState* state) {
  const EpochIdentity identity{hello.cluster(),          hello.host(),
                               hello.epoch().boot_id(),  hello.epoch().agent_instance(),
                               hello.kernel().release(), hello.kernel().build_id(),
                               hello.sample_bytes()};
  APQ_ASSIGN_OR_RETURN(Store::EpochInfo info, store.OpenEpoch(identity));
  APQ_ASSIGN_OR_RETURN(*state, LoadEpochState(store, info.epoch_id));
  return info;
}

absl::StatusOr<EpochState> LoadEpochState(Store& store, int64_t epoch_id) {
  APQ_ASSIGN_OR_RETURN(const StoredEpoch stored, store.LoadEpoch(epoch_id));
  auto corrupt = [epoch_id](const std::string& what) {
    return absl::DataLossError(absl::StrCat("epoch ", epoch_id, ": stored ", what, " does not parse"));
  };
  std::optional<apq::v1::HostMemory> memory;
  if (stored.memory && !memory.emplace().ParseFromString(*stored.memory)) return corrupt("host memory");
  absl::flat_hash_map<uint32_t, apq::v1::CodeObject> objects;
  for (const EpochRows::Object& row : stored.rows.objects) {
    apq::v1::CodeObject& object = objects[row.id];
    object.set_id(row.id);
    object.set_name(row.name);
    object.set_build_id(row.build_id);
  }
  absl::flat_hash_map<uint32_t, apq::v1::StackDefinition> stacks;
  for (const EpochRows::Stack& row : stored.rows.stacks) {
    if (!stacks[row.id].ParseFromString(row.definition)) return corrupt(absl::StrCat("stack ", row.id));
  }
  absl::flat_hash_map<uint32_t, EpochState::Series> series;
  for (const EpochRows::Series& row : stored.rows.series) {
    EpochState::Series& s = series[row.id];
    if (!s.key.ParseFromString(row.key)) return corrupt(absl::StrCat("series ", row.id));
    s.pages_outstanding = row.pages_outstanding;
    s.pages_allocated = row.pages_allocated;
    s.allocations = row.allocations;
    if (!row.class_pages) continue;
    apq::v1::PagesByClass split;
    if (!split.ParseFromString(*row.class_pages)) return corrupt(absl::StrCat("classes of series ", row.id));
    s.class_pages = PagesOfClasses(split);
  }
  return EpochState(stored.last_sequence, std::move(series), std::move(stacks), std::move(objects), std::move(memory));
}

}  // namespace apq
