#include "aggregator/epoch_rows.h"

#include "common/status_macros.h"

namespace apq {

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
