#include "aggregator/fleet_view.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/explanation.h"
#include "common/meminfo_balance.h"
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
    uncached_.folded = uncached_.function = uncached_.frames[0];
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
  path.function = FunctionOf(path.frames);
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
    const uint64_t classified_total =
        classified ? SumSelected(apq::v1::CLASS_FILTER_ALL, *classified) : 0;
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

absl::Status ForEachHeldSeries(const std::vector<const HostEpoch*>& epochs, PathNamer* namer, ClassFilter filter,
                               ClassBasis basis, const std::function<void(const SeriesBytes&)>& on_series) {
  for (const HostEpoch* epoch : epochs) {
    absl::StatusOr<SamplingPlan> plan = SamplingPlan::ForSampleBytes(epoch->sample_bytes);
    if (!plan.ok()) continue;
    for (const auto& [id, series] : epoch->state.series()) {
      if (series.key.stack_id() == APQ_STACK_UNSAMPLED) continue;
      int order = static_cast<int>(std::min<uint32_t>(series.key.order(), kNumOrders - 1));
      SeriesBytes held{epoch, &series, nullptr, 0, 0};
      if (!EstimateClasses(*plan, order, series, filter, basis, &held)) continue;
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
    double bytes = 0, variance = 0;
    std::array<double, kNumPageClasses> class_bytes{};
    uint32_t hosts = 0;
    int64_t last_host = -1;  // series come host by host, so a host is counted once
  };
  absl::flat_hash_map<std::string, Group> groups;
  const std::string& substring = request.frame_substring();
  const HostEpoch* build_of = nullptr;
  std::string build_hex;
  absl::Status status = ForEachHeldSeries(epochs, namer, request.class_filter(), ClassBasis::kLive,
                                          [&](const SeriesBytes& held) {
    const std::vector<std::string>& frames = held.path->frames;
    if (!substring.empty() && std::none_of(frames.begin(), frames.end(), [&](const std::string& f) {
          return f.find(substring) != std::string::npos;
        })) {
      return;
    }
    absl::string_view key;
    switch (request.group_by()) {
      case apq::v1::GROUP_BY_FUNCTION: key = held.path->function; break;
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
    for (int c = 0; c < kNumPageClasses; ++c) group.class_bytes[c] += held.class_bytes[c];
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
    if (request.class_filter() == apq::v1::CLASS_FILTER_ALL) continue;
    for (int c = 0; c < kNumPageClasses; ++c) {
      if (group.class_bytes[c] <= 0) continue;
      apq::v1::ClassAmount* amount = entry->add_classes();
      amount->set_page_class(static_cast<PageClass>(c));
      amount->set_bytes(group.class_bytes[c]);
    }
  }
  return response;
}

namespace {

constexpr size_t kMaxHoldersPerPath = 20;

// A hidden path of an explanation while it is summed over series and hosts.
struct PathSum {
  std::vector<std::string> frames;
  double bytes = 0, variance = 0;
  // (host, tgid, comm, cgroup) -> bytes
  absl::flat_hash_map<std::tuple<std::string, uint32_t, std::string, std::string>, double> holders;
};
using PathSums = absl::flat_hash_map<std::string, PathSum>;  // by folded path

// The largest `top` paths (0: all) into e, each with its largest holders and
// the rest of them summed in one line.
void AddPaths(const PathSums& sums, uint32_t top, bool with_host, apq::v1::Explanation* e) {
  std::vector<const PathSum*> paths;
  for (const auto& [folded, sum] : sums) paths.push_back(&sum);
  std::sort(paths.begin(), paths.end(), [](const PathSum* a, const PathSum* b) {
    return a->bytes != b->bytes ? a->bytes > b->bytes : a->frames < b->frames;
  });
  if (top != 0 && paths.size() > top) paths.resize(top);
  for (const PathSum* sum : paths) {
    apq::v1::ExplainedPath* path = e->add_paths();
    for (const std::string& frame : sum->frames) path->add_frames(frame);
    path->set_bytes(sum->bytes);
    path->set_standard_error(std::sqrt(std::max(sum->variance, 0.0)));
    std::vector<std::pair<double, apq::v1::PathHolder>> holders;
    for (const auto& [who, bytes] : sum->holders) {
      apq::v1::PathHolder holder;
      if (with_host) holder.set_host(std::get<0>(who));
      holder.set_tgid(std::get<1>(who));
      holder.set_comm(std::get<2>(who));
      holder.set_cgroup(std::get<3>(who));
      holder.set_bytes(bytes);
      holders.emplace_back(bytes, std::move(holder));
    }
    std::sort(holders.begin(), holders.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second.tgid() < b.second.tgid();
    });
    double rest = 0;
    for (size_t i = 0; i < holders.size(); ++i) {
      if (i < kMaxHoldersPerPath) {
        *path->add_holders() = std::move(holders[i].second);
      } else {
        rest += holders[i].first;
      }
    }
    if (holders.size() <= kMaxHoldersPerPath) continue;
    apq::v1::PathHolder* others = path->add_holders();
    others->set_comm(absl::StrCat("[", holders.size() - kMaxHoldersPerPath, " more processes]"));
    others->set_bytes(rest);
  }
}

void MergePaths(PathSums from, PathSums* into) {
  for (auto& [folded, path] : from) {
    PathSum& sum = (*into)[folded];
    if (sum.frames.empty()) sum.frames = std::move(path.frames);
    sum.bytes += path.bytes;
    sum.variance += path.variance;
    for (const auto& [who, bytes] : path.holders) sum.holders[who] += bytes;
  }
}

// The sum's holders at start, largest first, at most kMaxHoldersPerPath.
void KeepLargestStartHolders(apq::v1::Explanation* e) {
  auto* holders = e->mutable_held_at_start_holders();
  std::sort(holders->begin(), holders->end(), [](const auto& a, const auto& b) {
    return a.bytes() != b.bytes() ? a.bytes() > b.bytes() : std::make_tuple(a.host(), a.tgid()) < std::make_tuple(b.host(), b.tgid());
  });
  if (holders->size() > static_cast<int>(kMaxHoldersPerPath)) {
    holders->DeleteSubrange(kMaxHoldersPerPath, holders->size() - static_cast<int>(kMaxHoldersPerPath));
  }
}

// One host's equation, its hidden pages added to *paths; nullopt when it
// has no classification to explain with (none yet, or unusable meminfo).
absl::StatusOr<std::optional<apq::v1::Explanation>> ExplainHost(const HostEpoch& epoch, PathNamer* namer,
                                                                PathSums* paths) {
  const std::optional<apq::v1::HostMemory>& memory = epoch.state.memory();
  if (!memory) return std::nullopt;
  double hidden = 0, hidden_variance = 0, unknown = 0;
  // As classified: the pages of the moment its meminfo was read.
  absl::Status status = ForEachHeldSeries({&epoch}, namer, apq::v1::CLASS_FILTER_HIDDEN, ClassBasis::kAsClassified,
                                          [&](const SeriesBytes& held) {
    hidden += held.class_bytes[apq::v1::PAGE_CLASS_HIDDEN];
    hidden_variance += held.class_variance[apq::v1::PAGE_CLASS_HIDDEN];
    unknown += held.class_bytes[apq::v1::PAGE_CLASS_UNKNOWN];
    PathSum& path = (*paths)[held.path->folded];
    if (path.frames.empty()) path.frames = held.path->frames;
    path.bytes += held.bytes;
    path.variance += held.variance;
    path.holders[{epoch.host, held.series->key.tgid(), held.series->key.comm(), held.series->key.cgroup()}] +=
        held.bytes;
  });
  if (!status.ok()) return status;
  absl::flat_hash_map<std::string, uint64_t> meminfo;
  for (const apq::v1::MeminfoField& field : memory->meminfo()) meminfo[field.name()] = field.bytes();
  absl::StatusOr<MeminfoBalance> balance =
      BalanceMeminfo(meminfo, hidden, static_cast<double>(memory->held_at_start_bytes()));
  if (!balance.ok()) return std::nullopt;
  apq::v1::Explanation e = ExplanationOf(*balance);
  e.set_host(epoch.host);
  e.set_mode(epoch.sample_bytes == 0 ? "exact" : "sampled");
  e.set_hidden_traced_standard_error(std::sqrt(hidden_variance));
  e.set_traced_unknown_class_bytes(unknown);
  e.set_oldest_classification_unix_millis(memory->classified_unix_millis());
  if (!memory->held_at_start_known()) e.add_notes("the census of pages in use at start failed: held at start counted 0");
  for (const apq::v1::StartHolder& holder : memory->held_at_start_holders()) *e.add_held_at_start_holders() = holder;
  if (!memory->held_at_start_holders_unavailable().empty()) {
    e.add_notes("holders of pipes and sockets at start not found: " + memory->held_at_start_holders_unavailable());
  }
  return e;
}

}  // namespace

absl::StatusOr<apq::v1::ExplainResponse> ExplainEpochs(const std::vector<const HostEpoch*>& epochs,
                                                       const apq::v1::ExplainRequest& request, PathNamer* namer) {
  apq::v1::ExplainResponse response;
  apq::v1::Explanation sum;
  PathSums sum_paths;
  size_t unexplained = 0;
  for (const HostEpoch* epoch : epochs) {
    PathSums host_paths;
    absl::StatusOr<std::optional<apq::v1::Explanation>> host = ExplainHost(*epoch, namer, &host_paths);
    if (!host.ok()) return host.status();
    if (!*host) {
      ++unexplained;
    } else if (request.by_host()) {
      AddPaths(host_paths, request.top(), /*with_host=*/false, &**host);
      *response.add_explanations() = std::move(**host);
    } else {
      AddTerms(**host, &sum);
      MergePaths(std::move(host_paths), &sum_paths);
    }
  }
  if (!request.by_host()) {
    AddPaths(sum_paths, request.top(), /*with_host=*/true, &sum);
    KeepLargestStartHolders(&sum);
    if (sum.hosts() > 0) *response.add_explanations() = std::move(sum);
  }
  if (unexplained > 0 && response.explanations_size() > 0) {
    for (apq::v1::Explanation& e : *response.mutable_explanations()) {
      e.add_notes(absl::StrCat(unexplained, " selected hosts left out: not classified yet, or their meminfo unusable"));
    }
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
    absl::Status status = ForEachHeldSeries({epoch}, namer, apq::v1::CLASS_FILTER_ALL, ClassBasis::kLive,
                                            [&](const SeriesBytes& held) {
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
