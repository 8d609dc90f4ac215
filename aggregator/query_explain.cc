#include "aggregator/query_explain.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/explanation.h"
#include "common/meminfo_balance.h"

namespace apq {

namespace {

// A hidden path of an explanation while it is summed over series and hosts.
struct PathSum {
  std::vector<std::string> frames;
  double bytes = 0, variance = 0;
  Holders holders;
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
    AddHolders(sum->holders, with_host, /*with_classes=*/false, path->mutable_processes());
  }
}

void MergePaths(PathSums from, PathSums* into) {
  for (auto& [folded, path] : from) {
    PathSum& sum = (*into)[folded];
    if (sum.frames.empty()) sum.frames = std::move(path.frames);
    sum.bytes += path.bytes;
    sum.variance += path.variance;
    for (const auto& [who, held] : path.holders) sum.holders[who].bytes += held.bytes;
  }
}

// The sum's holders at start, largest first, at most kMaxHoldersPerPath.
void KeepLargestStartHolders(apq::v1::Explanation* e) {
  auto* holders = e->mutable_held_at_start_holders();
  std::sort(holders->begin(), holders->end(), [](const auto& a, const auto& b) {
    return a.bytes() != b.bytes() ? a.bytes() > b.bytes()
                                  : std::make_tuple(a.host(), a.tgid()) < std::make_tuple(b.host(), b.tgid());
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
  absl::Status status = ForEachHeldSeries(
      {&epoch}, namer, apq::v1::CLASS_FILTER_HIDDEN, ClassBasis::kAsClassified, [&](const SeriesBytes& held) {
        hidden += held.class_bytes[apq::v1::PAGE_CLASS_HIDDEN];
        hidden_variance += held.class_variance[apq::v1::PAGE_CLASS_HIDDEN];
        unknown += held.class_bytes[apq::v1::PAGE_CLASS_UNKNOWN];
        PathSum& path = (*paths)[held.path->folded];
        if (path.frames.empty()) path.frames = held.path->frames;
        path.bytes += held.bytes;
        path.variance += held.variance;
        path.holders[{epoch.host, held.series->key.tgid(), held.series->key.comm(), held.series->key.cgroup()}].bytes +=
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
  e.set_classified_unix_millis(memory->classified_unix_millis());
  if (!memory->held_at_start_known())
    e.add_notes("the census of pages in use at start failed: held at start counted 0");
  for (const apq::v1::StartHolder& holder : memory->held_at_start_holders()) {
    // The host is the epoch's, whatever the agent wrote: an agent speaks for its own host alone.
    apq::v1::StartHolder* kept = e.add_held_at_start_holders();
    *kept = holder;
    kept->set_host(epoch.host);
  }
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

}  // namespace apq
