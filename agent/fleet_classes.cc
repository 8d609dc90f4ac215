#include "agent/fleet_classes.h"

#include "agent/report.h"
#include "common/meminfo_balance.h"

namespace apq {

void FleetClassifier::Learn(const TrackerSnapshot& snapshot) {
  for (const auto& [stack_id, frames] : snapshot.new_stacks) {
    class_of_stack_.insert_or_assign(stack_id, PathClassOf(CallPathOfStack(*symbols_, frames)));
  }
}

absl::StatusOr<ClassifiedPages> FleetClassifier::Classify(const TrackerSnapshot& snapshot, absl::string_view meminfo,
                                                          int64_t unix_millis) const {
  if (!snapshot.page_classes) return absl::FailedPreconditionError("the snapshot was not classified");
  absl::StatusOr<absl::flat_hash_map<std::string, uint64_t>> fields = ParseMeminfo(meminfo);
  if (!fields.ok()) return fields.status();
  ClassifiedPages classified;
  for (const TrackerSnapshot::Owner& owner : snapshot.owners) {
    auto pages = snapshot.page_classes->owners.find(static_cast<uint32_t>(owner.id));
    if (pages == snapshot.page_classes->owners.end()) continue;
    auto stack_class = class_of_stack_.find(owner.key.stack_id);
    const PageClass unflagged =
        UnflaggedClassOf(owner.id, owner.key.stack_id,
                         stack_class == class_of_stack_.end() ? std::nullopt : std::optional(stack_class->second));
    classified.owners[owner.id] = PagesByClassOf(pages->second, unflagged);
  }
  apq::v1::HostMemory& memory = classified.memory;
  memory.set_classified_unix_millis(unix_millis);
  for (const auto& [name, bytes] : *fields) {
    apq::v1::MeminfoField* field = memory.add_meminfo();
    field->set_name(name);
    field->set_bytes(bytes);
  }
  memory.set_held_at_start_known(held_at_start_bytes_.has_value());
  memory.set_held_at_start_bytes(held_at_start_bytes_.value_or(0));
  if (holders_.ok()) {
    for (const apq::v1::StartHolder& holder : *holders_) *memory.add_held_at_start_holders() = holder;
  } else {
    memory.set_held_at_start_holders_unavailable(std::string(holders_.status().message()));
  }
  memory.set_free_pages_still_owned(snapshot.page_classes->free_pages_still_owned);
  memory.set_classification_seconds(snapshot.page_classes->seconds);
  return classified;
}

}  // namespace apq
