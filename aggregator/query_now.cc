#include "aggregator/query_now.h"

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/explanation.h"
#include "common/meminfo_balance.h"
#include "common/sampling.h"
#include "common/stack_paths.h"
#include "page_tracker.h"

namespace apq {
namespace {

// Fills held's bytes by class and the selected bytes; false if the series
// holds none of the selected classes.
bool EstimateClasses(const SamplingPlan& plan, int order, const EpochState::Series& series, ClassFilter filter,
                     ClassBasis basis, SeriesBytes* held) {
  const std::optional<ClassPageCounts>& classified = series.class_pages;
  if (basis == ClassBasis::kAsClassified) {
    if (!classified) return false;
    for (int c = 0; c < kNumPageClasses; ++c) {
      held->class_bytes[c] = plan.EstimateBytes(order, (*classified)[c]);
      held->class_variance[c] = plan.EstimateVariance(order, (*classified)[c]);
    }
  } else {
    if (series.pages_outstanding <= 0) return false;
    const auto pages = static_cast<uint64_t>(series.pages_outstanding);
    const double bytes = plan.EstimateBytes(order, pages), variance = plan.EstimateVariance(order, pages);
    // Estimates are linear in pages: each class gets its share of the
    // series as last classified; with no share known, all are unknown.
    const uint64_t classified_total = classified ? SumSelected(apq::v1::CLASS_FILTER_ALL, *classified) : 0;
    for (int c = 0; c < kNumPageClasses; ++c) {
      const double share = classified_total == 0 ? (c == apq::v1::PAGE_CLASS_UNKNOWN ? 1.0 : 0.0)
                                                 : static_cast<double>((*classified)[c]) / classified_total;
      held->class_bytes[c] = bytes * share;
      held->class_variance[c] = variance * share;
    }
    if (filter == apq::v1::CLASS_FILTER_ALL) {  // the total as it is, not a sum of shares
      held->bytes = bytes;
      held->variance = variance;
      return true;
    }
  }
  held->bytes = SumSelected(filter, held->class_bytes);
  held->variance = SumSelected(filter, held->class_variance);
  return held->bytes > 0;
}

}  // namespace

void AddHolders(const Holders& holders, bool with_host, bool with_classes,
                google::protobuf::RepeatedPtrField<apq::v1::PathHolder>* out) {
  std::vector<std::pair<const HolderKey*, const HolderBytes*>> ranked;
  ranked.reserve(holders.size());
  for (const auto& [who, held] : holders) ranked.emplace_back(&who, &held);
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.second->bytes != b.second->bytes ? a.second->bytes > b.second->bytes : *a.first < *b.first;
  });
  double rest = 0;
  for (size_t i = 0; i < ranked.size(); ++i) {
    const auto& [who, held] = ranked[i];
    if (i >= kMaxHoldersPerPath) {
      rest += held->bytes;
      continue;
    }
    apq::v1::PathHolder* holder = out->Add();
    if (with_host) holder->set_host(std::get<0>(*who));
    holder->set_tgid(std::get<1>(*who));
    holder->set_comm(std::get<2>(*who));
    holder->set_cgroup(std::get<3>(*who));
    holder->set_bytes(held->bytes);
    if (!with_classes) continue;
    for (int c = 0; c < kNumPageClasses; ++c) {
      if (held->class_bytes[c] <= 0) continue;
      apq::v1::ClassAmount* amount = holder->add_classes();
      amount->set_page_class(static_cast<PageClass>(c));
      amount->set_bytes(held->class_bytes[c]);
    }
  }
  if (ranked.size() <= kMaxHoldersPerPath) return;
  apq::v1::PathHolder* others = out->Add();
  others->set_comm(absl::StrCat("[", ranked.size() - kMaxHoldersPerPath, " more processes]"));
  others->set_bytes(rest);
}

absl::Status ForEachHeldSeries(const std::vector<const HostEpoch*>& epochs, PathNamer* namer, ClassFilter filter,
                               ClassBasis basis, const std::function<void(const SeriesBytes&)>& on_series,
                               IdleSeries idle) {
  for (const HostEpoch* epoch : epochs) {
    absl::StatusOr<SamplingPlan> plan = SamplingPlan::ForSampleBytes(epoch->sample_bytes);
    if (!plan.ok()) continue;
    for (const auto& [id, series] : epoch->state.series()) {
      if (series.key.stack_id() == APQ_STACK_UNSAMPLED) continue;
      int order = static_cast<int>(std::min<uint32_t>(series.key.order(), kNumOrders - 1));
      SeriesBytes held{epoch, &series, nullptr, 0, 0, plan->EstimateBytes(order, series.pages_allocated)};
      if (const double seconds = epoch->state.interval_seconds(); seconds > 0) {
        const auto [allocated, freed] = epoch->state.PagesInLastInterval(series);
        held.alloc_per_second = plan->EstimateBytes(order, allocated) / seconds;
        held.free_per_second = plan->EstimateBytes(order, freed) / seconds;
      }
      if (!EstimateClasses(*plan, order, series, filter, basis, &held)) {
        const bool active = held.alloc_per_second > 0 || held.free_per_second > 0;
        const bool passed = idle == IdleSeries::kIncludeIdle ? active || series.pages_allocated > 0
                                                             : idle == IdleSeries::kIncludeActive && active;
        if (!passed) continue;
        held.bytes = held.variance = 0;
        held.class_bytes = held.class_variance = {};
      }
      absl::StatusOr<const NamedPath*> path = namer->PathOf(*epoch, series.key.stack_id());
      if (!path.ok()) return path.status();
      held.path = *path;
      on_series(held);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<apq::v1::TopResponse> TopOfEpochs(const std::vector<const HostEpoch*>& epochs,
                                                 const apq::v1::TopRequest& request, PathNamer* namer) {
  struct Group {
    double bytes = 0, variance = 0, allocated = 0;
    // By stack: the path's code objects, owned (PathNamer's paths live
    // only until its next call).
    std::vector<std::string> objects;
    std::array<double, kNumPageClasses> class_bytes{};
    uint32_t hosts = 0;
    int64_t last_host = -1;  // series come host by host, so a host is counted once
    double alloc_per_second = 0, free_per_second = 0;
    Holders holders;  // with_processes
  };
  const bool with_host = epochs.size() > 1;
  absl::flat_hash_map<std::string, Group> groups;
  const std::string& substring = request.frame_substring();
  const HostEpoch* build_of = nullptr;
  std::string build_hex;
  absl::flat_hash_set<std::pair<std::string, std::string>> pending;
  const ClassFilter filter = request.class_filter();
  double unclassified_bytes = 0;
  absl::flat_hash_set<std::string> unclassified_paths;  // folded
  // Every class, so that the pages of no known class are seen too; the
  // filter is applied here.
  absl::Status status = ForEachHeldSeries(
      epochs, namer, apq::v1::CLASS_FILTER_ALL, ClassBasis::kLive,
      [&](const SeriesBytes& all) {
        pending.insert(all.path->tables_pending.begin(), all.path->tables_pending.end());
        if (request.pid() != 0 && all.series->key.tgid() != request.pid()) return;
        const std::vector<std::string>& frames = all.path->frames;
        if (!substring.empty() && std::none_of(frames.begin(), frames.end(), [&](const std::string& f) {
              return f.find(substring) != std::string::npos;
            })) {
          return;
        }
        SeriesBytes held = all;
        if (filter != apq::v1::CLASS_FILTER_ALL) {
          if (const double unknown = all.class_bytes[apq::v1::PAGE_CLASS_UNKNOWN]; unknown > 0) {
            unclassified_bytes += unknown;
            unclassified_paths.insert(all.path->folded);
          }
          held.bytes = SumSelected(filter, all.class_bytes);
          held.variance = SumSelected(filter, all.class_variance);
          // A class view lists what holds its pages: churn alone is not a row.
          if (held.bytes <= 0 && (!request.with_allocated() || all.allocated_bytes <= 0)) return;
        }
        absl::string_view key;
        switch (request.group_by()) {
          case apq::v1::GROUP_BY_FUNCTION:
            key = held.path->function;
            break;
          case apq::v1::GROUP_BY_HOST:
            key = held.host->host;
            break;
          case apq::v1::GROUP_BY_PROCESS:
            key = held.series->key.comm();
            break;
          case apq::v1::GROUP_BY_CGROUP:
            key = held.series->key.cgroup();
            break;
          case apq::v1::GROUP_BY_BUILD:
            if (build_of != held.host) build_hex = absl::BytesToHexString((build_of = held.host)->build_id);
            key = build_hex;
            break;
          default:
            key = held.path->folded;
            break;
        }
        Group& group = groups[key];  // heterogeneous: a string is made only for a new group
        group.bytes += held.bytes;
        group.allocated += held.allocated_bytes;
        if (request.group_by() == apq::v1::GROUP_BY_STACK && group.objects.empty()) group.objects = held.path->objects;
        group.variance += held.variance;
        for (int c = 0; c < kNumPageClasses; ++c) group.class_bytes[c] += held.class_bytes[c];
        group.alloc_per_second += held.alloc_per_second;
        group.free_per_second += held.free_per_second;
        if (request.with_processes() && held.bytes > 0) {
          const apq::v1::SeriesKey& key = held.series->key;
          HolderBytes& holder =
              group.holders[{with_host ? held.host->host : std::string(), key.tgid(), key.comm(), key.cgroup()}];
          holder.bytes += held.bytes;
          for (int c = 0; c < kNumPageClasses; ++c) holder.class_bytes[c] += held.class_bytes[c];
        }
        if (group.last_host != held.host->host_id) {
          group.last_host = held.host->host_id;
          ++group.hosts;
        }
      },
      request.with_allocated() ? IdleSeries::kIncludeIdle : IdleSeries::kIncludeActive);
  if (!status.ok()) return status;
  apq::v1::TopResponse response;
  response.set_hosts_selected(static_cast<uint32_t>(epochs.size()));
  response.set_unclassified_bytes(unclassified_bytes);
  response.set_unclassified_paths(static_cast<uint32_t>(unclassified_paths.size()));
  for (const auto& [object, build_id] : pending) {
    apq::v1::SymbolRequest* table = response.add_symbols_pending();
    table->set_object(object);
    table->set_build_id(build_id);
  }
  // Pointers: a group holds its path's objects and its holders, not to be copied.
  std::vector<const std::pair<const std::string, Group>*> sorted;
  sorted.reserve(groups.size());
  for (const auto& entry : groups) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) {
    return a->second.bytes != b->second.bytes ? a->second.bytes > b->second.bytes : a->first < b->first;
  });
  for (const auto* sorted_entry : sorted) {
    const auto& [key, group] = *sorted_entry;
    if (request.top() != 0 && static_cast<uint32_t>(response.entries_size()) >= request.top()) break;
    apq::v1::TopEntry* entry = response.add_entries();
    entry->set_key(key);
    entry->set_bytes_outstanding(group.bytes);
    entry->set_standard_error(std::sqrt(group.variance));
    entry->set_hosts(group.hosts);
    entry->set_alloc_bytes_per_second(group.alloc_per_second);
    entry->set_free_bytes_per_second(group.free_per_second);
    AddHolders(group.holders, with_host, /*with_classes=*/true, entry->mutable_processes());
    if (request.with_allocated()) {
      entry->set_bytes_allocated(group.allocated);
      entry->mutable_frame_objects()->Assign(group.objects.begin(), group.objects.end());
    }
    for (int c = 0; c < kNumPageClasses; ++c) {
      if (group.class_bytes[c] <= 0) continue;
      apq::v1::ClassAmount* amount = entry->add_classes();
      amount->set_page_class(static_cast<PageClass>(c));
      amount->set_bytes(group.class_bytes[c]);
    }
  }
  return response;
}

absl::StatusOr<FleetSample> SampleFleet(const std::vector<const HostEpoch*>& epochs, PathNamer* namer, int64_t minute) {
  FleetSample sample;
  sample.minute = minute;
  for (const HostEpoch* epoch : epochs) {
    FleetSample::Host host;
    host.build_id = epoch->build_id;
    absl::Status status =
        ForEachHeldSeries({epoch}, namer, apq::v1::CLASS_FILTER_ALL, ClassBasis::kLive, [&](const SeriesBytes& held) {
          FleetSample::Cell& cell = host.paths[held.path->folded];
          cell.bytes += held.bytes;
          cell.variance += held.variance;
        });
    if (!status.ok()) return status;
    for (const auto& [path, cell] : host.paths) {
      FleetSample::Cell& sum = sample.clusters[{epoch->cluster, epoch->build_id, path}];
      sum.bytes += cell.bytes;
      sum.variance += cell.variance;
      sum.hosts += 1;
    }
    sample.hosts[epoch->host_id] = std::move(host);
    sample.cluster_hosts[epoch->cluster] += 1;
  }
  return sample;
}

}  // namespace apq
