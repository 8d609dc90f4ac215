#include "agent/report.h"

#include "common/explanation.h"
#include "common/losses.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/container/flat_hash_map.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/build_id.h"
#include "common/display.h"
#include "common/stack_paths.h"
#include "nlohmann/json.hpp"

namespace apq {
namespace {

constexpr size_t kProcessesPerPath = 5;  // in the table; json has them all

using ClassBytes = std::array<double, kNumPageClasses>;

struct PathAccumulator {
  PathStats stats;
  absl::flat_hash_map<std::pair<uint32_t, uint64_t>, double> bytes_by_process;  // (tgid, cgroup id)
  absl::flat_hash_map<std::pair<uint32_t, uint64_t>, ClassBytes> class_bytes_by_process;
  ClassBytes class_variance{};
  std::optional<PageClass> unflagged_class;  // the path's, worked out once
};

}  // namespace

double PathStats::standard_error() const { return std::sqrt(std::max(variance, 0.0)); }

std::string Report::mode() const {
  return sample_bytes == 0 ? "exact" : absl::StrCat("sampled (one stack per ", sample_bytes, " bytes on average)");
}

apq::v1::Losses LossesOf(const TrackerSnapshot& snapshot) {
  const auto& c = snapshot.counters;
  apq::v1::Losses l;
#define APQ_SET_LOSS(name, field) l.set_##field(c[APQ_CTR_##name]);
  APQ_LOSS_COUNTERS(APQ_SET_LOSS)
#undef APQ_SET_LOSS
  l.set_recursion_misses(snapshot.recursion_misses);
  return l;
}

ReportBuilder::ReportBuilder(const KernelSymbols* symbols, CgroupNames* cgroups, SamplingPlan sampling,
                             double start_seconds)
    : symbols_(symbols), cgroups_(cgroups), sampling_(sampling), start_seconds_(start_seconds) {}

StackPath StackPathOf(const KernelSymbols& symbols, const std::vector<uint64_t>& innermost_first) {
  std::vector<std::string> names, objects;
  names.reserve(innermost_first.size());
  objects.reserve(innermost_first.size());
  for (uint64_t ip : innermost_first) {
    std::optional<ResolvedSymbol> symbol = symbols.Resolve(ip);
    names.push_back(symbol ? std::string(symbol->name) : absl::StrFormat("0x%x", ip));
    objects.push_back(symbol && !symbol->module.empty() ? std::string(symbol->module) : "vmlinux");
  }
  StackPath path;
  path.frames = CallPathRootFirst(names);
  path.objects = KeptRootFirst(objects, path.frames.size());
  if (path.frames.empty()) path = {{"[page allocator]"}, {"vmlinux"}};
  return path;
}

PageClass UnflaggedClassOf(uint64_t owner_id, uint32_t stack_id, std::optional<PageClass> path_class) {
  const bool known = owner_id != APQ_OWNER_OVERFLOW && stack_id < APQ_STACK_LOST && path_class.has_value();
  return known ? *path_class : apq::v1::PAGE_CLASS_UNKNOWN;
}

std::vector<std::string> CallPathOfStack(const KernelSymbols& symbols, const std::vector<uint64_t>& innermost_first) {
  return StackPathOf(symbols, innermost_first).frames;
}

void ReportBuilder::Learn(const TrackerSnapshot& snapshot) {
  for (const auto& [stack_id, frames] : snapshot.new_stacks) {
    paths_by_stack_.insert_or_assign(stack_id, StackPathOf(*symbols_, frames));
  }
}

const StackPath& ReportBuilder::PathOf(uint32_t stack_id) const {
  static const StackPath kLost = {{kStackUnknownFrame}, {""}};
  // A stack not delivered yet. BpfPageTracker snapshots deliver every
  // owner's stack; this names the gap for any source that does not.
  static const StackPath kNotYetRead = {{"[stack not yet read]"}, {""}};
  if (stack_id == APQ_STACK_LOST) return kLost;
  auto cached = paths_by_stack_.find(stack_id);
  return cached == paths_by_stack_.end() ? kNotYetRead : cached->second;
}

Report ReportBuilder::Build(const TrackerSnapshot& now, const TrackerSnapshot* previous, size_t top_n) {
  Learn(now);
  Report report;
  report.sample_bytes = sampling_.sample_bytes();
  report.seconds_tracing = now.monotonic_seconds - start_seconds_;
  const auto& c = now.counters;
  report.alloc_events = c[APQ_CTR_ALLOC_EVENTS];
  report.alloc_pages = c[APQ_CTR_ALLOC_PAGES];
  report.free_events = c[APQ_CTR_FREE_EVENTS];
  report.free_pages = c[APQ_CTR_FREE_PAGES];
  report.failed_allocs = c[APQ_CTR_FAILED_ALLOCS];
  report.sampled_allocs = c[APQ_CTR_SAMPLED_ALLOCS];
  report.bulk_pages = c[APQ_CTR_BULK_PAGES];
  report.contig_pages = c[APQ_CTR_CONTIG_PAGES];
  report.migrated_pages = c[APQ_CTR_MIGRATED_PAGES];
  report.losses = LossesOf(now);

  absl::flat_hash_map<uint64_t, const apq_owner_counters*> previous_counters;
  if (previous) {
    report.interval_seconds = now.monotonic_seconds - previous->monotonic_seconds;
    for (const auto& owner : previous->owners) previous_counters[owner.id] = &owner.counters;
  }

  absl::flat_hash_map<std::string, PathAccumulator> paths;
  for (const TrackerSnapshot::Owner& owner : now.owners) {
    const apq_owner_counters& counters = owner.counters;
    int64_t outstanding = std::max<int64_t>(counters.pages_outstanding, 0);
    report.tracked_bytes_outstanding += static_cast<uint64_t>(outstanding) * kPageSize;
    if (owner.key.stack_id == APQ_STACK_UNSAMPLED) {
      report.unsampled_bytes_outstanding += static_cast<uint64_t>(outstanding) * kPageSize;
      continue;
    }
    // Pages of a sampled allocation stand for 1/p pages each. The overflow
    // owner holds pages of every kind and order: counted as they are.
    bool weighted = !sampling_.exact() && owner.id != APQ_OWNER_OVERFLOW;
    int order = static_cast<int>(std::min<uint32_t>(owner.key.order, kNumOrders - 1));
    auto weigh = [&](uint64_t pages) {
      return weighted ? sampling_.EstimateBytes(order, pages) : static_cast<double>(pages * kPageSize);
    };

    static const StackPath kOverflow = {{"[owner table full]"}, {""}};
    const StackPath& stack_path = owner.id == APQ_OWNER_OVERFLOW ? kOverflow : PathOf(owner.key.stack_id);
    std::string folded = FoldPath(stack_path.frames);
    PathAccumulator& path = paths[folded];
    if (path.stats.frames.empty()) {
      path.stats.frames = stack_path.frames;
      path.stats.frame_objects = stack_path.objects;
      path.stats.folded = folded;
    }
    double bytes = weigh(static_cast<uint64_t>(outstanding));
    path.stats.bytes_outstanding += bytes;
    if (weighted) path.stats.variance += sampling_.EstimateVariance(order, static_cast<uint64_t>(outstanding));
    path.stats.bytes_allocated += weigh(counters.pages_allocated);
    path.stats.bytes_freed += weigh(PagesFreed(counters));
    if (report.interval_seconds > 0) {
      auto before = previous_counters.find(owner.id);
      uint64_t allocated_before = before == previous_counters.end() ? 0 : before->second->pages_allocated;
      uint64_t freed_before = before == previous_counters.end() ? 0 : PagesFreed(*before->second);
      uint64_t freed_now = std::max(PagesFreed(counters), freed_before);
      path.stats.alloc_bytes_per_second += weigh(counters.pages_allocated - allocated_before) / report.interval_seconds;
      path.stats.free_bytes_per_second += weigh(freed_now - freed_before) / report.interval_seconds;
    }
    if (bytes > 0) path.bytes_by_process[{owner.key.tgid, owner.key.cgroup_id}] += bytes;
    if (!now.page_classes) continue;
    auto classified = now.page_classes->owners.find(static_cast<uint32_t>(owner.id));
    if (classified == now.page_classes->owners.end()) continue;
    // Paths whose stack is not known are paths of their own: one class each.
    if (!path.unflagged_class) {
      path.unflagged_class = UnflaggedClassOf(
          owner.id, owner.key.stack_id,
          paths_by_stack_.contains(owner.key.stack_id) ? std::optional(PathClassOf(path.stats.frames)) : std::nullopt);
    }
    const PageClass unflagged_class = *path.unflagged_class;
    ClassBytes& process_classes = path.class_bytes_by_process[{owner.key.tgid, owner.key.cgroup_id}];
    const ClassPageCounts owner_pages = PagesByClassOf(classified->second, unflagged_class);
    for (int c = 0; c < kNumPageClasses; ++c) {
      const uint64_t pages = owner_pages[c];
      if (pages == 0) continue;
      path.stats.class_bytes[c] += weigh(pages);
      process_classes[c] += weigh(pages);
      if (weighted) path.class_variance[c] += sampling_.EstimateVariance(order, pages);
    }
  }
  if (now.page_classes) {
    report.class_filter = class_filter_;
    report.free_pages_still_owned = now.page_classes->free_pages_still_owned;
    report.classification_seconds = now.page_classes->seconds;
    for (auto& [folded, path] : paths) {
      for (int c = 0; c < kNumPageClasses; ++c) {
        report.class_bytes[c] += path.stats.class_bytes[c];
        report.class_variance[c] += path.class_variance[c];
      }
      if (class_filter_ == apq::v1::CLASS_FILTER_ALL) continue;
      if (const double unknown = path.stats.class_bytes[apq::v1::PAGE_CLASS_UNKNOWN]; unknown > 0) {
        report.unclassified_bytes += unknown;
        ++report.unclassified_paths;
      }
      path.stats.bytes_outstanding = SumSelected(class_filter_, path.stats.class_bytes);
      path.stats.variance = SumSelected(class_filter_, path.class_variance);
      for (auto& [process, bytes] : path.bytes_by_process) {
        auto classes = path.class_bytes_by_process.find(process);
        bytes = classes == path.class_bytes_by_process.end() ? 0 : SumSelected(class_filter_, classes->second);
      }
    }
    if (class_filter_ != apq::v1::CLASS_FILTER_ALL) {
      absl::erase_if(paths, [](const auto& entry) { return entry.second.stats.bytes_outstanding <= 0; });
    }
  }

  report.total_paths = paths.size();
  report.paths.reserve(paths.size());
  for (auto& [folded, path] : paths) {
    for (const auto& [process, bytes] : path.bytes_by_process) {
      if (bytes <= 0) continue;
      const auto& [tgid, cgroup_id] = process;
      auto name = now.process_names.find(tgid);
      std::string comm = name == now.process_names.end() ? "?" : name->second;
      std::string cgroup = cgroups_ ? cgroups_->NameOf(cgroup_id) : absl::StrCat("cgroup ", cgroup_id);
      ProcessShare share{tgid, std::move(comm), cgroup_id, std::move(cgroup), bytes, {}};
      if (auto classes = path.class_bytes_by_process.find(process); classes != path.class_bytes_by_process.end()) {
        share.class_bytes = classes->second;
      }
      path.stats.processes.push_back(std::move(share));
    }
    std::sort(path.stats.processes.begin(), path.stats.processes.end(),
              [](const ProcessShare& a, const ProcessShare& b) {
                return a.bytes > b.bytes || (a.bytes == b.bytes && a.tgid < b.tgid);
              });
    report.paths.push_back(std::move(path.stats));
  }
  std::sort(report.paths.begin(), report.paths.end(), [](const PathStats& a, const PathStats& b) {
    if (a.bytes_outstanding != b.bytes_outstanding) return a.bytes_outstanding > b.bytes_outstanding;
    return a.folded < b.folded;
  });
  if (top_n != 0 && report.paths.size() > top_n) report.paths.resize(top_n);
  return report;
}

MemoryProfile ProfileOf(const Report& report, const std::function<std::string(const std::string&)>& build_id_of) {
  MemoryProfile profile;
  profile.duration_nanos = static_cast<int64_t>(report.seconds_tracing * 1e9);
  profile.comments = {absl::StrCat("apq-agent --local, mode ", report.mode()),
                      absl::StrCat("pages: ", report.class_filter ? ClassFilterName(*report.class_filter) : "all"),
                      "objects are 4 KiB pages"};
  const ClassFilter filter = report.class_filter.value_or(apq::v1::CLASS_FILTER_ALL);
  for (const PathStats& path : report.paths) {
    std::vector<ProfileFrame> frames;
    for (size_t i = 0; i < path.frames.size(); ++i) {
      const std::string& object = i < path.frame_objects.size() ? path.frame_objects[i] : "";
      frames.push_back({path.frames[i], object.empty() ? "[none]" : object});
      if (!object.empty() && !profile.build_ids.contains(object)) {
        const std::string id = build_id_of(object == "vmlinux" ? "" : object);
        if (!id.empty()) profile.build_ids[object] = HexBuildId(id);
      }
    }
    for (const ProcessShare& share : path.processes) {
      const ProfileSample of_process{
          frames, share.bytes, 0, {{"process", share.comm}, {"cgroup", share.cgroup}}, {{"pid", share.tgid}}};
      if (!report.class_filter) {
        profile.samples.push_back(of_process);
        continue;
      }
      for (int c = 0; c < kNumPageClasses; ++c) {
        const auto page_class = static_cast<PageClass>(c);
        if (share.class_bytes[c] <= 0 || !Selected(filter, page_class)) continue;
        ProfileSample sample = of_process;
        sample.inuse_bytes = share.class_bytes[c];
        sample.labels.emplace_back("class", PageClassName(page_class));
        profile.samples.push_back(std::move(sample));
      }
    }
    if (path.bytes_allocated > 0) profile.samples.push_back({frames, 0, path.bytes_allocated, {}, {}});
  }
  return profile;
}

std::string FormatLossSummary(const Report& r) {
  std::string out = absl::StrCat("losses: ", FormatLosses(r.losses), "\n");
  for (const std::string& hooked : r.hooked_paths) absl::StrAppend(&out, "hooked: ", hooked, "\n");
  for (const std::string& blind : r.blind_paths) absl::StrAppend(&out, "not visible: ", blind, "\n");
  return out;
}

std::string FormatTable(const Report& r, const TableStyle& style) {
  auto shown = [&style](double bytes) { return ShownBytes(bytes, style); };
  std::string out = absl::StrFormat(
      "apq local  mode=%s  tracing %.1f s  outstanding (exact, allocated since start): %s in %d paths\n", r.mode(),
      r.seconds_tracing, shown(static_cast<double>(r.tracked_bytes_outstanding)), r.total_paths);
  if (r.sample_bytes != 0) {
    absl::StrAppendFormat(
        &out, "  of which %s in allocations whose stack was not sampled (spread over the estimates below)\n",
        shown(static_cast<double>(r.unsampled_bytes_outstanding)));
  }
  if (r.class_filter) {
    absl::StrAppendFormat(&out, "  pages shown: %s (classified from /proc/kpageflags and the call path in %.2f s)\n",
                          *r.class_filter == apq::v1::CLASS_FILTER_HIDDEN    ? "hidden, counted by no meminfo field"
                          : *r.class_filter == apq::v1::CLASS_FILTER_VISIBLE ? "visible, counted by a meminfo field"
                                                                             : "all",
                          r.classification_seconds);
    if (*r.class_filter != apq::v1::CLASS_FILTER_ALL && r.unclassified_paths > 0) {
      absl::StrAppend(&out, "  ", UnclassifiedLine(r.unclassified_bytes, r.unclassified_paths, style));
    }
  }
  const PathTable table(style, {"ALLOC/s", "FREE/s"}, "CALL PATH (leaf <- callers)");
  out += table.Header();
  for (const PathStats& p : r.paths) {
    out += table.Line({p.bytes_outstanding,
                       r.sample_bytes ? p.standard_error() : 0,
                       {shown(p.alloc_bytes_per_second), shown(p.free_bytes_per_second)},
                       r.class_filter ? LargestClassName(p.class_bytes) : "",
                       p.frames});
    for (size_t i = 0; i < p.processes.size() && i < kProcessesPerPath; ++i) {
      const ProcessShare& s = p.processes[i];
      out += table.DetailLine(s.bytes, absl::StrFormat("pid %d %s  %s", s.tgid, s.comm, s.cgroup));
    }
    if (p.processes.size() > kProcessesPerPath) {
      out += table.DetailLine(0, absl::StrFormat("(%d more processes)", p.processes.size() - kProcessesPerPath));
    }
  }
  absl::StrAppendFormat(&out,
                        "events: alloc=%d (%d pages) free=%d (%d pages) failed-alloc=%d stacks-walked=%d "
                        "bulk-pages=%d contig-pages=%d migrated-pages=%d\n",
                        r.alloc_events, r.alloc_pages, r.free_events, r.free_pages, r.failed_allocs, r.sampled_allocs,
                        r.bulk_pages, r.contig_pages, r.migrated_pages);
  out += FormatLossSummary(r);
  if (r.census_at_start) {
    const PageCensus& census = *r.census_at_start;
    absl::StrAppendFormat(&out, "in use before tracing started (not attributable): %s",
                          shown(static_cast<double>(census.in_use_pages * kPageSize)));
    for (const auto& c : census.classes) {
      if (c.pages) absl::StrAppendFormat(&out, ", %s %s", c.name, shown(static_cast<double>(c.pages * kPageSize)));
    }
    absl::StrAppendFormat(&out, ", other kernel %s\n", shown(static_cast<double>(census.Unclassified() * kPageSize)));
    if (!r.held_at_start_by_cgroup.empty()) {
      absl::StrAppend(&out, "  of which held at start with no page flag, charged to memory cgroups:");
      for (size_t i = 0; i < r.held_at_start_by_cgroup.size() && i < kProcessesPerPath; ++i) {
        absl::StrAppendFormat(&out, " %s %s,", r.held_at_start_by_cgroup[i].first,
                              shown(static_cast<double>(r.held_at_start_by_cgroup[i].second)));
      }
      absl::StrAppend(&out, " (the rest of the other kernel pages is not attributable)\n");
    }
    if (!r.held_at_start_holders_unavailable.empty()) {
      absl::StrAppend(&out, "  holders of pipes and sockets at start not found: ", r.held_at_start_holders_unavailable,
                      "\n");
    }
    for (size_t i = 0; i < r.held_at_start_holders.size() && i < kProcessesPerPath; ++i) {
      absl::StrAppend(&out, "  held at start by ", DescribeStartHolder(r.held_at_start_holders[i]), "\n");
    }
  }
  return out;
}

// {"hidden": bytes, ...}: the classes that hold bytes; empty when the
// report was not classified.
nlohmann::json ClassesJson(const Report& r, const ClassBytes& bytes) {
  nlohmann::json classes = nlohmann::json::object();
  if (!r.class_filter) return classes;
  for (int c = 0; c < kNumPageClasses; ++c) {
    if (bytes[c] != 0) classes[PageClassName(static_cast<PageClass>(c))] = bytes[c];
  }
  return classes;
}

std::string FormatJson(const Report& r) {
  nlohmann::json j;
  j["mode"] = r.sample_bytes == 0 ? "exact" : "sampled";
  j["sample_bytes"] = r.sample_bytes;
  j["seconds_tracing"] = r.seconds_tracing;
  j["interval_seconds"] = r.interval_seconds;
  j["events"] = {{"alloc", r.alloc_events},    {"alloc_pages", r.alloc_pages},    {"free", r.free_events},
                 {"free_pages", r.free_pages}, {"failed_alloc", r.failed_allocs}, {"stacks_walked", r.sampled_allocs},
                 {"bulk_pages", r.bulk_pages}, {"contig_pages", r.contig_pages},  {"migrated_pages", r.migrated_pages}};
  j["tracked_bytes_outstanding"] = r.tracked_bytes_outstanding;
  j["unsampled_bytes_outstanding"] = r.unsampled_bytes_outstanding;
  j["total_paths"] = r.total_paths;
  nlohmann::json paths = nlohmann::json::array();
  for (const PathStats& p : r.paths) {
    nlohmann::json processes = nlohmann::json::array();
    for (const ProcessShare& s : p.processes) {
      processes.push_back({{"tgid", s.tgid},
                           {"comm", s.comm},
                           {"cgroup_id", s.cgroup_id},
                           {"cgroup", s.cgroup},
                           {"bytes", s.bytes},
                           {"classes", ClassesJson(r, s.class_bytes)}});
    }
    paths.push_back({{"frames", p.frames},
                     {"classes", ClassesJson(r, p.class_bytes)},
                     {"bytes_outstanding", p.bytes_outstanding},
                     {"standard_error", p.standard_error()},
                     {"bytes_allocated", p.bytes_allocated},
                     {"bytes_freed", p.bytes_freed},
                     {"alloc_bytes_per_second", p.alloc_bytes_per_second},
                     {"free_bytes_per_second", p.free_bytes_per_second},
                     {"processes", processes}});
  }
  j["paths"] = paths;
  if (r.class_filter) {
    j["class"] = ClassFilterName(*r.class_filter);
    j["class_bytes"] = ClassesJson(r, r.class_bytes);
    j["unclassified_bytes"] = r.unclassified_bytes;
    j["unclassified_paths"] = r.unclassified_paths;
    j["classification"] = {{"seconds", r.classification_seconds}, {"free_pages_still_owned", r.free_pages_still_owned}};
  }
  nlohmann::json losses = nlohmann::json::object();
  for (const auto& [name, value] : LossValues(r.losses)) losses[name] = value;
  j["losses"] = losses;
  j["hooked"] = r.hooked_paths;
  j["not_visible"] = r.blind_paths;
  if (r.census_at_start) {
    nlohmann::json classes = nlohmann::json::object();
    for (const auto& c : r.census_at_start->classes) classes[c.name] = c.pages * kPageSize;
    nlohmann::json by_cgroup = nlohmann::json::object();
    for (const auto& [cgroup, bytes] : r.held_at_start_by_cgroup) by_cgroup[cgroup] = bytes;
    j["in_use_at_start"] = {{"bytes", r.census_at_start->in_use_pages * kPageSize},
                            {"by_class", classes},
                            {"unclassified_bytes", r.census_at_start->Unclassified() * kPageSize},
                            {"unflagged_by_cgroup", by_cgroup}};
    nlohmann::json holders = nlohmann::json::array();
    for (const apq::v1::StartHolder& holder : r.held_at_start_holders) holders.push_back(StartHolderJson(holder));
    j["in_use_at_start"]["holders"] = holders;
    if (!r.held_at_start_holders_unavailable.empty()) {
      j["in_use_at_start"]["holders_unavailable"] = r.held_at_start_holders_unavailable;
    }
  }
  return j.dump() + "\n";
}

std::string FormatFolded(const Report& r) {
  std::string out;
  for (const PathStats& p : r.paths) {
    auto bytes = static_cast<uint64_t>(std::llround(p.bytes_outstanding));
    if (bytes == 0) continue;
    absl::StrAppend(&out, p.folded, " ", bytes, "\n");
  }
  return out;
}

}  // namespace apq
