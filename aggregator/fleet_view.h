#ifndef APQ_AGGREGATOR_FLEET_VIEW_H_
#define APQ_AGGREGATOR_FLEET_VIEW_H_

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
#include "aggregator/epoch_state.h"
#include "apq/v1/apq.pb.h"
#include "common/kernel_symbols.h"
#include "common/page_classes.h"

namespace apq {

// One agent epoch as the aggregator holds it in memory: who it is and the
// counters it has reported. Only the newest epoch of a host counts.
struct HostEpoch {
  int64_t epoch_id = 0;
  int64_t host_id = 0;
  std::string cluster, host, build_id;
  uint64_t sample_bytes = 0;
  int64_t last_report_ms = 0;
  EpochState state;
};

// A call path: function names, root first, and their folded form.
struct NamedPath {
  std::vector<std::string> frames;
  std::string folded;
  std::string function;  // FunctionOf(frames)
};

// Names the call paths of stacks: function names, root first, allocator
// frames removed, from the symbol table of each frame's code object (one per
// build ID). Paths are cached per (epoch, stack), since a stack never
// changes within its epoch, and interned: the same path on many hosts is
// held once.
class PathNamer {
 public:
  // Gives the stored symbol table of (object, build ID), or nullopt if no
  // agent has uploaded it yet. Tables arrive only through Add, so a missing
  // one is not asked for again.
  using TableSource = std::function<absl::StatusOr<std::optional<apq::v1::SymbolTable>>(
      const std::string& object, const std::string& build_id)>;
  explicit PathNamer(TableSource source) : source_(std::move(source)) {}

  // A table just uploaded: used from now on without reading it back.
  void Add(const apq::v1::SymbolTable& table);
  // Frames of objects without a table are named "object+0xoffset" (and
  // such paths are not cached, so they get their names once it arrives).
  // The path is valid until the next call.
  absl::StatusOr<const NamedPath*> PathOf(const HostEpoch& epoch, uint32_t stack_id);

 private:
  absl::StatusOr<const KernelSymbols*> SymbolsOf(const std::string& object, const std::string& build_id);

  TableSource source_;
  // nullptr: known to be missing.
  absl::flat_hash_map<std::pair<std::string, std::string>, std::unique_ptr<KernelSymbols>> symbols_;
  absl::node_hash_map<std::string, NamedPath> interned_;  // by folded path
  absl::flat_hash_map<std::pair<int64_t, uint32_t>, const NamedPath*> paths_;
  NamedPath uncached_;  // the last incomplete path
};

// What one series holds, as the queries see it.
struct SeriesBytes {
  const HostEpoch* host;
  const EpochState::Series* series;
  const NamedPath* path;
  double bytes;     // of the selected classes, estimated from the host's sampling plan (exact at sample_bytes 0)
  double variance;  // of that estimate
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
absl::Status ForEachHeldSeries(const std::vector<const HostEpoch*>& epochs, PathNamer* namer, ClassFilter filter,
                               ClassBasis basis, const std::function<void(const SeriesBytes&)>& on_series);

// The fleet's top groups now, over the given epochs, honouring the
// request's grouping, filters and limit (its time fields are not looked at).
absl::StatusOr<apq::v1::TopResponse> TopOfEpochs(const std::vector<const HostEpoch*>& epochs,
                                                 const apq::v1::TopRequest& request, PathNamer* namer);

// `apq explain` over the given epochs: each host's /proc/meminfo at its last
// classification reconciled with its hidden pages as classified then, summed
// over the hosts (or one explanation per host with request.by_host). Hosts
// that have not classified yet are left out, and a note says how many.
absl::StatusOr<apq::v1::ExplainResponse> ExplainEpochs(const std::vector<const HostEpoch*>& epochs,
                                                       const apq::v1::ExplainRequest& request, PathNamer* namer);

// One sample of the fleet for history: per (cluster, build, path) and per
// (host, path) bytes, taken once a minute.
struct FleetSample {
  struct Cell {
    double bytes = 0, variance = 0;
    uint32_t hosts = 0;
  };
  struct Host {
    std::string build_id;
    absl::flat_hash_map<std::string, Cell> paths;  // by folded path
  };
  int64_t minute = 0;  // unix minutes: the fleet's state at minute * 60 s
  // (cluster, build ID, folded path) -> cell
  absl::flat_hash_map<std::tuple<std::string, std::string, std::string>, Cell> clusters;
  absl::flat_hash_map<int64_t, Host> hosts;  // by host ID
  absl::flat_hash_map<std::string, uint32_t> cluster_hosts;  // hosts sampled per cluster
};

absl::StatusOr<FleetSample> SampleFleet(const std::vector<const HostEpoch*>& epochs, PathNamer* namer,
                                        int64_t minute);

// A host's paths to keep at hour resolution: the `keep` largest, and the
// rest summed under kOtherPaths, so the rows still add up to the host's total.
inline constexpr char kOtherPaths[] = "[other paths]";
std::vector<std::pair<std::string, FleetSample::Cell>> LargestPaths(const FleetSample::Host& host, size_t keep);

}  // namespace apq

#endif  // APQ_AGGREGATOR_FLEET_VIEW_H_
