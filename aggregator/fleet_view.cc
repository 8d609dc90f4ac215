#include "aggregator/fleet_view.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/sampling.h"
#include "common/stack_paths.h"
#include "page_tracker.h"

namespace apq {
namespace {

// Bounds the path cache: cleared when it grows past this many paths.
constexpr size_t kMaxCachedPaths = 1 << 20;

std::unique_ptr<KernelSymbols> Parsed(const apq::v1::SymbolTable& table) {
  std::vector<std::pair<uint64_t, std::string>> symbols;
  symbols.reserve(static_cast<size_t>(table.symbols_size()));
  for (const apq::v1::Symbol& s : table.symbols()) symbols.emplace_back(s.offset(), s.name());
  return std::make_unique<KernelSymbols>(KernelSymbols::FromOffsets(symbols));
}

}  // namespace

void PathNamer::Add(const apq::v1::SymbolTable& table) {
  symbols_[{table.object(), table.build_id()}] = Parsed(table);
}

absl::StatusOr<const KernelSymbols*> PathNamer::SymbolsOf(const std::string& object, const std::string& build_id) {
  auto key = std::make_pair(object, build_id);
  if (auto cached = symbols_.find(key); cached != symbols_.end()) return cached->second.get();
  absl::StatusOr<std::optional<apq::v1::SymbolTable>> table = source_(object, build_id);
  if (!table.ok()) return table.status();
  return (symbols_[key] = *table ? Parsed(**table) : nullptr).get();
}

absl::StatusOr<const NamedPath*> PathNamer::PathOf(const HostEpoch& epoch, uint32_t stack_id) {
  if (auto cached = paths_.find({epoch.epoch_id, stack_id}); cached != paths_.end()) return cached->second;
  auto stack = epoch.state.stacks().find(stack_id);
  if (stack == epoch.state.stacks().end()) {
    uncached_.frames = {"[stack unknown]"};  // APQ_STACK_LOST, or a stack the agent could not send
    uncached_.folded = uncached_.frames[0];
    return &uncached_;
  }
  bool complete = true;
  std::vector<std::string> names;
  for (const apq::v1::Frame& frame : stack->second.frames()) {
    auto object = epoch.state.objects().find(frame.object_id());
    if (object == epoch.state.objects().end()) {
      names.push_back("[unknown]");
      complete = false;
      continue;
    }
    absl::StatusOr<const KernelSymbols*> symbols = SymbolsOf(object->second.name(), object->second.build_id());
    if (!symbols.ok()) return symbols.status();
    std::optional<ResolvedSymbol> symbol = *symbols ? (*symbols)->Resolve(frame.offset()) : std::nullopt;
    if (!*symbols) complete = false;
    names.push_back(symbol ? std::string(symbol->name)
                           : absl::StrCat(object->second.name(), "+0x", absl::Hex(frame.offset())));
  }
  NamedPath path;
  path.frames = CallPathRootFirst(names);
  if (path.frames.empty()) path.frames = {"[page allocator]"};
  path.folded = FoldPath(path.frames);
  if (!complete) {
    uncached_ = std::move(path);
    return &uncached_;
  }
  if (paths_.size() >= kMaxCachedPaths) {
    paths_.clear();
    interned_.clear();
  }
  auto interned = interned_.try_emplace(path.folded, std::move(path)).first;
  return paths_[{epoch.epoch_id, stack_id}] = &interned->second;
}

absl::Status ForEachHeldSeries(const std::vector<const HostEpoch*>& epochs, PathNamer* namer,
                               const std::function<void(const SeriesBytes&)>& on_series) {
  for (const HostEpoch* epoch : epochs) {
    absl::StatusOr<SamplingPlan> plan = SamplingPlan::ForSampleBytes(epoch->sample_bytes);
    if (!plan.ok()) continue;
    for (const auto& [id, series] : epoch->state.series()) {
      if (series.pages_outstanding <= 0 || series.key.stack_id() == APQ_STACK_UNSAMPLED) continue;
      auto pages = static_cast<uint64_t>(series.pages_outstanding);
      int order = static_cast<int>(std::min<uint32_t>(series.key.order(), kNumOrders - 1));
      absl::StatusOr<const NamedPath*> path = namer->PathOf(*epoch, series.key.stack_id());
      if (!path.ok()) return path.status();
      on_series({epoch, &series, *path, plan->EstimateBytes(order, pages), plan->EstimateVariance(order, pages)});
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<apq::v1::TopResponse> TopOfEpochs(const std::vector<const HostEpoch*>& epochs,
                                                 const apq::v1::TopRequest& request, PathNamer* namer) {
  struct Group {
    double bytes = 0, variance = 0;
    uint32_t hosts = 0;
    int64_t last_host = -1;  // series come host by host, so a host is counted once
  };
  absl::flat_hash_map<std::string, Group> groups;
  const std::string& substring = request.frame_substring();
  const HostEpoch* build_of = nullptr;
  std::string build_hex;
  absl::Status status = ForEachHeldSeries(epochs, namer, [&](const SeriesBytes& held) {
    const std::vector<std::string>& frames = held.path->frames;
    if (!substring.empty() && std::none_of(frames.begin(), frames.end(), [&](const std::string& f) {
          return f.find(substring) != std::string::npos;
        })) {
      return;
    }
    absl::string_view key;
    switch (request.group_by()) {
      case apq::v1::GROUP_BY_FUNCTION: key = frames.back(); break;
      case apq::v1::GROUP_BY_HOST: key = held.host->host; break;
      case apq::v1::GROUP_BY_PROCESS: key = held.series->key.comm(); break;
      case apq::v1::GROUP_BY_CGROUP: key = held.series->key.cgroup(); break;
      case apq::v1::GROUP_BY_BUILD:
        if (build_of != held.host) build_hex = absl::BytesToHexString((build_of = held.host)->build_id);
        key = build_hex;
        break;
      default: key = held.path->folded; break;
    }
    Group& group = groups[key];  // heterogeneous: a string is made only for a new group
    group.bytes += held.bytes;
    group.variance += held.variance;
    if (group.last_host != held.host->host_id) {
      group.last_host = held.host->host_id;
      ++group.hosts;
    }
  });
  if (!status.ok()) return status;
  apq::v1::TopResponse response;
  response.set_hosts_selected(static_cast<uint32_t>(epochs.size()));
  std::vector<std::pair<std::string, Group>> sorted(groups.begin(), groups.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second.bytes != b.second.bytes ? a.second.bytes > b.second.bytes : a.first < b.first;
  });
  for (const auto& [key, group] : sorted) {
    if (request.top() != 0 && static_cast<uint32_t>(response.entries_size()) >= request.top()) break;
    apq::v1::TopEntry* entry = response.add_entries();
    entry->set_key(key);
    entry->set_bytes_outstanding(group.bytes);
    entry->set_standard_error(std::sqrt(group.variance));
    entry->set_hosts(group.hosts);
  }
  return response;
}

absl::StatusOr<FleetSample> SampleFleet(const std::vector<const HostEpoch*>& epochs, PathNamer* namer,
                                        int64_t minute) {
  FleetSample sample;
  sample.minute = minute;
  for (const HostEpoch* epoch : epochs) {
    FleetSample::Host host;
    host.build_id = epoch->build_id;
    absl::Status status = ForEachHeldSeries({epoch}, namer, [&](const SeriesBytes& held) {
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

std::vector<std::pair<std::string, FleetSample::Cell>> LargestPaths(const FleetSample::Host& host, size_t keep) {
  std::vector<std::pair<std::string, FleetSample::Cell>> paths(host.paths.begin(), host.paths.end());
  std::sort(paths.begin(), paths.end(), [](const auto& a, const auto& b) {
    return a.second.bytes != b.second.bytes ? a.second.bytes > b.second.bytes : a.first < b.first;
  });
  if (paths.size() <= keep) return paths;
  FleetSample::Cell other;
  for (size_t i = keep; i < paths.size(); ++i) {
    other.bytes += paths[i].second.bytes;
    other.variance += paths[i].second.variance;
  }
  other.hosts = 1;
  paths.resize(keep);
  paths.emplace_back(kOtherPaths, other);
  return paths;
}

}  // namespace apq
