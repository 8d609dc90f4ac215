#include "agent/local_report.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/report.h"
#include "common/explanation.h"
#include "common/losses.h"
#include "common/tables.h"

namespace apq {
namespace {

constexpr size_t kLinesPerList = 5;  // of the census's cgroups and holders

// A map's entries, largest first (then by name).
std::vector<std::pair<std::string, uint64_t>> Largest(const google::protobuf::Map<std::string, uint64_t>& map) {
  std::vector<std::pair<std::string, uint64_t>> sorted(map.begin(), map.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return sorted;
}

std::string CensusLines(const apq::v1::LocalReport& r, const TableStyle& style) {
  auto shown = [&style](uint64_t bytes) { return ShownBytes(static_cast<double>(bytes), style); };
  const apq::v1::StartCensus& census = r.in_use_at_start();
  std::string out = absl::StrCat("in use before tracing started (not attributable): ", shown(census.bytes()));
  for (const auto& [name, bytes] : Largest(census.by_class())) {
    if (bytes != 0) absl::StrAppend(&out, ", ", name, " ", shown(bytes));
  }
  absl::StrAppend(&out, ", other kernel ", shown(census.unclassified_bytes()), "\n");
  const auto by_cgroup = Largest(census.unflagged_by_cgroup());
  if (!by_cgroup.empty()) {
    absl::StrAppend(&out, "  of which held at start with no page flag, charged to memory cgroups:");
    for (size_t i = 0; i < by_cgroup.size() && i < kLinesPerList; ++i) {
      absl::StrAppend(&out, " ", by_cgroup[i].first, " ", shown(by_cgroup[i].second), ",");
    }
    absl::StrAppend(&out, " (the rest of the other kernel pages is not attributable)\n");
  }
  if (!r.has_memory()) return out;
  if (!r.memory().held_at_start_holders_unavailable().empty()) {
    absl::StrAppend(&out, "  holders of pipes and sockets at start not found: ",
                    r.memory().held_at_start_holders_unavailable(), "\n");
  }
  for (int i = 0; i < r.memory().held_at_start_holders_size() && i < static_cast<int>(kLinesPerList); ++i) {
    absl::StrAppend(&out, "  held at start by ", DescribeStartHolder(r.memory().held_at_start_holders(i)), "\n");
  }
  return out;
}

}  // namespace

apq::v1::StartCensus StartCensusOf(const PageCensus& census, CgroupNames& memcgs) {
  apq::v1::StartCensus out;
  out.set_bytes(census.in_use_pages * kPageSize);
  for (const PageCensus::Class& c : census.classes) (*out.mutable_by_class())[c.name] += c.pages * kPageSize;
  out.set_unclassified_bytes(census.Unclassified() * kPageSize);
  for (const auto& [memcg, pages] : census.unflagged_pages_by_memcg) {
    (*out.mutable_unflagged_by_cgroup())[memcgs.NameOf(memcg)] += pages * kPageSize;
  }
  return out;
}

apq::v1::LocalReport LocalReportOf(const TrackerSnapshot& snapshot, const SamplingPlan& sampling,
                                   double seconds_tracing) {
  apq::v1::LocalReport r;
  r.set_mode(sampling.exact() ? "exact" : "sampled");
  r.set_sample_bytes(sampling.sample_bytes());
  r.set_seconds_tracing(seconds_tracing);
  const auto& c = snapshot.counters;
  apq::v1::AllocationEvents* events = r.mutable_events();
  events->set_alloc(c[APQ_CTR_ALLOC_EVENTS]);
  events->set_alloc_pages(c[APQ_CTR_ALLOC_PAGES]);
  events->set_free(c[APQ_CTR_FREE_EVENTS]);
  events->set_free_pages(c[APQ_CTR_FREE_PAGES]);
  events->set_failed_alloc(c[APQ_CTR_FAILED_ALLOCS]);
  events->set_stacks_walked(c[APQ_CTR_SAMPLED_ALLOCS]);
  events->set_bulk_pages(c[APQ_CTR_BULK_PAGES]);
  events->set_contig_pages(c[APQ_CTR_CONTIG_PAGES]);
  events->set_migrated_pages(c[APQ_CTR_MIGRATED_PAGES]);
  uint64_t tracked = 0, unsampled = 0;
  for (const TrackerSnapshot::Owner& owner : snapshot.owners) {
    const uint64_t bytes = static_cast<uint64_t>(std::max<int64_t>(owner.counters.pages_outstanding, 0)) * kPageSize;
    tracked += bytes;
    if (owner.key.stack_id == APQ_STACK_UNSAMPLED) unsampled += bytes;
  }
  r.set_tracked_bytes_outstanding(tracked);
  r.set_unsampled_bytes_outstanding(unsampled);
  *r.mutable_losses() = LossesOf(snapshot);
  return r;
}

std::string FormatLossSummary(const apq::v1::LocalReport& r) {
  std::string out = absl::StrCat("losses: ", FormatLosses(r.losses()), "\n");
  for (const std::string& hooked : r.coverage().hooked()) absl::StrAppend(&out, "hooked: ", hooked, "\n");
  for (const std::string& blind : r.coverage().not_visible()) absl::StrAppend(&out, "not visible: ", blind, "\n");
  return out;
}

std::string FormatLocalTable(const apq::v1::LocalReport& r, const TableStyle& style) {
  const std::string mode =
      r.sample_bytes() == 0 ? "exact" : absl::StrCat("sampled (one stack per ", r.sample_bytes(), " bytes on average)");
  std::string out =
      absl::StrFormat("apq local  mode=%s  tracing %.1f s  outstanding (exact, allocated since start): %s\n", mode,
                      r.seconds_tracing(), ShownBytes(static_cast<double>(r.tracked_bytes_outstanding()), style));
  if (r.sample_bytes() != 0) {
    absl::StrAppend(&out, "  of which ", ShownBytes(static_cast<double>(r.unsampled_bytes_outstanding()), style),
                    " in allocations whose stack was not sampled (spread over the estimates below)\n");
  }
  if (r.has_memory()) {
    absl::StrAppendFormat(&out, "  classified from /proc/kpageflags and the call path; the last pass took %.2f s\n",
                          r.memory().classification_seconds());
  }
  out += FormatTopTable(r.request(), r.top(), "stack", style);
  const apq::v1::AllocationEvents& e = r.events();
  absl::StrAppendFormat(&out,
                        "events: alloc=%d (%d pages) free=%d (%d pages) failed-alloc=%d stacks-walked=%d "
                        "bulk-pages=%d contig-pages=%d migrated-pages=%d\n",
                        e.alloc(), e.alloc_pages(), e.free(), e.free_pages(), e.failed_alloc(), e.stacks_walked(),
                        e.bulk_pages(), e.contig_pages(), e.migrated_pages());
  out += FormatLossSummary(r);
  if (r.has_in_use_at_start()) out += CensusLines(r, style);
  return out;
}

}  // namespace apq
