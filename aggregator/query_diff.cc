#include "aggregator/query_diff.h"

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_map.h"

namespace apq {
namespace {

struct Mean {
  double bytes = 0, variance = 0, hosts = 0;
};

// Each group's mean over the side's samples (a sample where it is absent
// counts 0), and the mean cohort.
absl::flat_hash_map<std::string, Mean> MeansOf(const DiffSide& side, double* cohort) {
  absl::flat_hash_map<std::string, Mean> means;
  const double samples = static_cast<double>(side.cohort.size());
  *cohort = 0;
  if (samples == 0) return means;
  for (const auto& [sample, hosts] : side.cohort) *cohort += hosts / samples;
  for (const DiffSide::Cell& cell : side.cells) {
    if (!side.cohort.contains(cell.sample)) continue;
    Mean& mean = means[cell.key];
    mean.bytes += cell.bytes / samples;
    // Samples of one group are strongly correlated (the same pages, minute
    // after minute): the mean's variance is taken as the samples' mean
    // variance, not a fraction of it.
    mean.variance += cell.variance / samples;
    mean.hosts += cell.hosts / samples;
  }
  return means;
}

}  // namespace

apq::v1::DiffResponse DiffOf(const DiffSide& before, const DiffSide& after, uint32_t top) {
  double before_cohort = 0, after_cohort = 0;
  const absl::flat_hash_map<std::string, Mean> was = MeansOf(before, &before_cohort),
                                               is = MeansOf(after, &after_cohort);
  auto per_host = [](double value, double cohort) { return cohort > 0 ? value / cohort : 0.0; };
  std::vector<apq::v1::DiffEntry> entries;
  auto add = [&](const std::string& key, const Mean* b, const Mean* a) {
    apq::v1::DiffEntry& entry = entries.emplace_back();
    entry.set_key(key);
    const Mean none;
    const Mean& old_side = b ? *b : none;
    const Mean& new_side = a ? *a : none;
    entry.set_before_bytes(old_side.bytes);
    entry.set_after_bytes(new_side.bytes);
    entry.set_before_hosts(static_cast<uint32_t>(std::ceil(old_side.hosts - 1e-9)));
    entry.set_after_hosts(static_cast<uint32_t>(std::ceil(new_side.hosts - 1e-9)));
    entry.set_before_bytes_per_host(per_host(old_side.bytes, before_cohort));
    entry.set_after_bytes_per_host(per_host(new_side.bytes, after_cohort));
    entry.set_change_per_host(entry.after_bytes_per_host() - entry.before_bytes_per_host());
    entry.set_standard_error(std::sqrt(per_host(per_host(old_side.variance, before_cohort), before_cohort) +
                                       per_host(per_host(new_side.variance, after_cohort), after_cohort)));
    entry.set_status(!b ? "new" : !a ? "vanished" : "");
  };
  for (const auto& [key, mean] : was) {
    auto now = is.find(key);
    add(key, &mean, now == is.end() ? nullptr : &now->second);
  }
  for (const auto& [key, mean] : is) {
    if (!was.contains(key)) add(key, nullptr, &mean);
  }
  std::sort(entries.begin(), entries.end(), [](const apq::v1::DiffEntry& x, const apq::v1::DiffEntry& y) {
    const double dx = std::fabs(x.change_per_host()), dy = std::fabs(y.change_per_host());
    return dx != dy ? dx > dy : x.key() < y.key();
  });
  apq::v1::DiffResponse response;
  for (apq::v1::DiffEntry& entry : entries) {
    if (top != 0 && static_cast<uint32_t>(response.entries_size()) >= top) break;
    *response.add_entries() = std::move(entry);
  }
  response.set_before_cohort_hosts(static_cast<uint32_t>(std::ceil(before_cohort - 1e-9)));
  response.set_after_cohort_hosts(static_cast<uint32_t>(std::ceil(after_cohort - 1e-9)));
  response.set_before_samples(static_cast<uint32_t>(before.cohort.size()));
  response.set_after_samples(static_cast<uint32_t>(after.cohort.size()));
  return response;
}

}  // namespace apq
