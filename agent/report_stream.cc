#include "agent/report_stream.h"

namespace apq {

ReportStream::ReportStream(FrameEncoder* frames, size_t budget_bytes, std::function<std::string(uint64_t)> cgroup_name)
    : frames_(frames), budget_bytes_(budget_bytes), cgroup_name_(std::move(cgroup_name)) {}

apq::v1::Report ReportStream::Build(const TrackerSnapshot& snapshot, bool full, const ClassifiedPages* classified) {
  apq::v1::Report report;
  report.set_sequence(next_sequence_++);
  report.set_full_snapshot(full);

  for (const auto& [id, ips] : snapshot.new_stacks) {
    apq::v1::StackDefinition definition;
    definition.set_id(id);
    for (uint64_t ip : ips) *definition.add_frames() = frames_->Encode(ip);
    stacks_.insert_or_assign(id, std::move(definition));
    new_stack_ids_.push_back(id);
  }
  std::vector<apq::v1::CodeObject> objects = full ? frames_->AllObjects() : frames_->TakeNewObjects();
  if (full) frames_->TakeNewObjects();
  for (apq::v1::CodeObject& object : objects) *report.add_objects() = std::move(object);
  if (full) {
    for (const auto& [id, definition] : stacks_) *report.add_stacks() = definition;
  } else {
    for (uint32_t id : new_stack_ids_) *report.add_stacks() = stacks_.at(id);
  }
  new_stack_ids_.clear();

  const uint64_t build = ++builds_;
  for (const TrackerSnapshot::Owner& owner : snapshot.owners) {
    // The wire must never refer to an undefined stack: an owner whose stack
    // has not been delivered (BpfPageTracker snapshots never do this) keeps
    // its counts until a report can define the stack.
    if (owner.key.stack_id < APQ_STACK_LOST && !stacks_.contains(owner.key.stack_id)) {
      if (auto held = sent_.find(owner.id); held != sent_.end()) held->second.seen_in_build = build;
      continue;
    }
    Sent& sent = sent_[owner.id];
    sent.seen_in_build = build;
    const apq_owner_counters& now = owner.counters;
    bool changed = now.pages_outstanding != sent.counters.pages_outstanding ||
                   now.pages_allocated != sent.counters.pages_allocated || now.allocations != sent.counters.allocations;
    if (!changed && sent.series_id != 0 && now.pages_outstanding == 0 && ++sent.idle_reports >= kIdleReportsToRetire) {
      if (!full) report.add_retired_series(sent.series_id);
      sent.series_id = 0;
      sent.classes.reset();
    }
    if (changed) sent.idle_reports = 0;
    std::optional<ClassPageCounts> classes;
    if (classified) {
      auto found = classified->owners.find(owner.id);
      classes = found == classified->owners.end() ? ClassPageCounts{} : found->second;
    }
    const bool classes_changed = classes && classes != sent.classes;
    // Retired: nothing to say until its counters change.
    if (sent.series_id == 0 ? !changed : !(changed || classes_changed || full)) continue;
    const bool new_series = sent.series_id == 0;
    if (new_series) sent.series_id = next_series_id_++;
    apq::v1::SeriesDelta* delta = report.add_series();
    delta->set_series_id(sent.series_id);
    if (full || new_series) {
      apq::v1::SeriesKey* key = delta->mutable_key();
      key->set_stack_id(owner.key.stack_id);
      key->set_tgid(owner.key.tgid);
      auto name = snapshot.process_names.find(owner.key.tgid);
      if (name != snapshot.process_names.end()) key->set_comm(name->second);
      key->set_cgroup(cgroup_name_ ? cgroup_name_(owner.key.cgroup_id) : std::to_string(owner.key.cgroup_id));
      key->set_order(owner.key.order);
    }
    // A snapshot carries absolute values (what the owner holds; cumulative
    // counts since tracking began), a delta what changed since the last report.
    const apq_owner_counters base = full ? apq_owner_counters{} : sent.counters;
    delta->set_pages_outstanding(now.pages_outstanding - base.pages_outstanding);
    delta->set_pages_allocated(now.pages_allocated - base.pages_allocated);
    delta->set_allocations(now.allocations - base.allocations);
    sent.counters = now;
    if (classes) sent.classes = classes;
    if (sent.classes && (classes_changed || full)) *delta->mutable_pages_by_class() = ClassesOfPages(*sent.classes);
  }
  // Owners the tracker retired held no pages: their series go too.
  for (auto entry = sent_.begin(); entry != sent_.end();) {
    auto current = entry++;
    if (current->second.seen_in_build == build) continue;
    if (!full && current->second.series_id != 0) report.add_retired_series(current->second.series_id);
    sent_.erase(current);
  }
  return report;
}

void ReportStream::Add(const TrackerSnapshot& snapshot, const apq::v1::Losses& losses,
                       const apq::v1::Coverage& coverage, int64_t unix_millis, const ClassifiedPages* classified) {
  if (classified) memory_ = classified->memory;
  // Everything a report carries besides its series, so that its size is
  // known before it is weighed against the budget.
  auto complete = [&](apq::v1::Report& report, uint64_t dropped) {
    if (memory_ && (classified || report.full_snapshot())) *report.mutable_memory() = *memory_;
    report.set_unix_millis(unix_millis);
    *report.mutable_losses() = losses;
    report.mutable_losses()->set_reports_dropped(dropped);
    *report.mutable_coverage() = coverage;
  };
  apq::v1::Report report = Build(snapshot, snapshot_due_, classified);
  complete(report, reports_dropped_ + (report.full_snapshot() ? queue_.size() : 0));
  if (!report.full_snapshot() && queued_bytes_ + report.ByteSizeLong() > budget_bytes_) {
    // Over budget: one snapshot of absolute values, under the same
    // sequence number, stands for every queued delta.
    --next_sequence_;
    report = Build(snapshot, /*full=*/true, classified);
    complete(report, reports_dropped_ + queue_.size());
  }
  if (report.full_snapshot()) {
    reports_dropped_ += queue_.size();
    queue_.clear();
    queued_bytes_ = 0;
    snapshot_due_ = false;
  }
  queued_bytes_ += report.ByteSizeLong();
  queue_.push_back(std::move(report));
}

void ReportStream::Acknowledge(uint64_t sequence) {
  while (!queue_.empty() && queue_.front().sequence() <= sequence) {
    queued_bytes_ -= queue_.front().ByteSizeLong();
    queue_.pop_front();
  }
}

}  // namespace apq
