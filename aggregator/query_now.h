#ifndef APQ_AGGREGATOR_QUERY_NOW_H_
#define APQ_AGGREGATOR_QUERY_NOW_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "aggregator/fleet_epoch.h"
#include "aggregator/query_paths.h"
#include "aggregator/store.h"
#include "apq/v1/apq.pb.h"
#include "common/kernel_symbols.h"
#include "common/page_classes.h"

namespace apq {

// What one series holds, as the queries see it.
struct SeriesBytes {
  const HostEpoch* host;
  const EpochState::Series* series;
  const NamedPath* path;
  double bytes;            // of the selected classes, estimated from the host's sampling plan (exact at sample_bytes 0)
  double variance;         // of that estimate
  double allocated_bytes;  // allocated since the agent started, estimated alike (all classes)
  // Over the host's last report interval (all classes); 0 without one.
  double alloc_per_second = 0, free_per_second = 0;
  // The series' estimated bytes by class (all classes).
  std::array<double, kNumPageClasses> class_bytes{};
  std::array<double, kNumPageClasses> class_variance{};
};

// Which pages a series' classes count:
enum class ClassBasis {
  // The pages outstanding now, split by the series' classes at the host's
  // last classification (exact at that moment; a series with nothing
  // classified yet counts as PAGE_CLASS_UNKNOWN): live views such as top.
  kLive,
  // The pages as classified, of the moment the host's meminfo was read
  // with them (series not classified then are left out): apq explain.
  kAsClassified,
};

// Calls on_series for every series of the given epochs holding pages of the
// selected classes, with its path and estimated bytes. Series of unsampled
// pages are skipped: the sampled stacks' estimates stand for them. Epochs
// whose sampling plan is invalid (a hostile Hello) contribute nothing.
// With kIncludeActive, series holding none of the selected pages but that
// allocated or freed over their host's last interval are passed too (bytes
// 0), for rates; with kIncludeIdle, also those with any allocation since
// their agent started, for allocation totals.
enum class IdleSeries { kSkip, kIncludeActive, kIncludeIdle };
absl::Status ForEachHeldSeries(const std::vector<const HostEpoch*>& epochs, PathNamer* namer, ClassFilter filter,
                               ClassBasis basis, const std::function<void(const SeriesBytes&)>& on_series,
                               IdleSeries idle = IdleSeries::kSkip);

// Who holds a group's bytes: (host, tgid, comm, cgroup), and how much of
// the selected classes, and of each class.
using HolderKey = std::tuple<std::string, uint32_t, std::string, std::string>;
struct HolderBytes {
  double bytes = 0;
  std::array<double, kNumPageClasses> class_bytes{};
};
using Holders = absl::flat_hash_map<HolderKey, HolderBytes>;
inline constexpr size_t kMaxHoldersPerPath = 20;
// The largest kMaxHoldersPerPath holders into *out, then one line summing
// the rest (tgid 0, comm "[N more processes]"); hosts named with_host, and
// each holder's classes with_classes.
void AddHolders(const Holders& holders, bool with_host, bool with_classes,
                google::protobuf::RepeatedPtrField<apq::v1::PathHolder>* out);

// The fleet's top groups now, over the given epochs, honouring the
// request's grouping, filters and limit (its time fields are not looked at).
absl::StatusOr<apq::v1::TopResponse> TopOfEpochs(const std::vector<const HostEpoch*>& epochs,
                                                 const apq::v1::TopRequest& request, PathNamer* namer);

absl::StatusOr<FleetSample> SampleFleet(const std::vector<const HostEpoch*>& epochs, PathNamer* namer, int64_t minute);

}  // namespace apq

#endif  // APQ_AGGREGATOR_QUERY_NOW_H_
