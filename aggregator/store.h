#ifndef APQ_AGGREGATOR_STORE_H_
#define APQ_AGGREGATOR_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "aggregator/store_sqlite.h"
#include "apq/v1/apq.pb.h"

namespace apq {

// How long history is kept at each resolution.
struct Retention {
  int64_t minute_millis = 2 * 86'400'000LL;      // per (cluster, build, path), a sample a minute
  int64_t hour_millis = 90 * 86'400'000LL;       // per (cluster, build, path), last and peak of each hour
  int64_t host_hour_millis = 14 * 86'400'000LL;  // per (host, path), the largest paths of each hour
};

// History's resolutions, and the floor of value / unit (times before 1970
// included).
inline constexpr int64_t kMinuteMillis = 60'000;
inline constexpr int64_t kHourMillis = 3'600'000;
inline int64_t FloorDiv(int64_t value, int64_t unit) {
  return value >= 0 ? value / unit : -((-value + unit - 1) / unit);
}

// A host keeps this many paths per hour in host history; the rest are summed.
inline constexpr size_t kHostPathsPerHour = 16;

// A symbol table's key. Tables are kept per cluster: an agent of one
// cluster names only its own cluster's frames, whatever it uploads.
struct SymbolTableKey {
  std::string cluster, object, build_id;
  bool operator==(const SymbolTableKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const SymbolTableKey& key) {
    return H::combine(std::move(h), key.cluster, key.object, key.build_id);
  }
};

// What the store takes and gives are plain rows: it runs SQL and knows
// nothing of how the fleet applies reports. Protobuf messages it keeps
// whole (stack definitions, series keys, losses...) travel serialized.

// Who an agent epoch is: the hosts and epochs rows its Hello names.
struct EpochIdentity {
  std::string cluster, host, boot_id;
  uint64_t agent_instance = 0;
  std::string kernel_release, build_id;
  uint64_t sample_bytes = 0;
};

// An epoch's objects, stacks and series as rows.
struct EpochRows {
  struct Object {
    uint32_t id = 0;
    std::string name, build_id;
  };
  struct Stack {
    uint32_t id = 0;
    std::string definition;  // apq.v1.StackDefinition
  };
  struct Series {
    uint32_t id = 0;
    std::string key;  // apq.v1.SeriesKey
    int64_t pages_outstanding = 0;
    uint64_t pages_allocated = 0, allocations = 0;
    std::optional<std::string> class_pages;  // apq.v1.PagesByClass; none: not classified yet
  };
  std::vector<Object> objects;
  std::vector<Stack> stacks;
  std::vector<Series> series;
};

// What one applied report changes in the file. The rows are upserted; with
// replaces_epoch (a full snapshot) they are all the epoch keeps.
struct EpochWrite {
  int64_t epoch_id = 0;
  uint64_t sequence = 0;
  int64_t received_millis = 0;  // the epoch's last report time
  bool replaces_epoch = false;
  EpochRows rows;
  std::vector<uint32_t> retired_series;
  std::string losses, coverage;       // apq.v1.Losses, apq.v1.Coverage
  bool memory_changes = false;        // set memory to `memory` (none: clear it)
  std::optional<std::string> memory;  // apq.v1.HostMemory
};

// An epoch as the file holds it.
struct StoredEpoch {
  uint64_t last_sequence = 0;
  EpochRows rows;
  std::optional<std::string> memory;  // apq.v1.HostMemory
};

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
  absl::flat_hash_map<int64_t, Host> hosts;                  // by host ID
  absl::flat_hash_map<std::string, uint32_t> cluster_hosts;  // hosts sampled per cluster
};

// A host's paths to keep at hour resolution: the `keep` largest, and the
// rest summed under kOtherPaths, so the rows still add up to the host's total.
inline constexpr char kOtherPaths[] = "[other paths]";
std::vector<std::pair<std::string, FleetSample::Cell>> LargestPaths(const FleetSample::Host& host, size_t keep);

// One side of `apq diff` as history holds it: per sample, each group's
// bytes (summed over the side's hosts, builds and paths), and the number of
// hosts the side selects in that sample (its cohort).
struct DiffSide {
  struct Cell {
    int64_t sample = 0;
    std::string key;
    double bytes = 0, variance = 0;
    uint32_t hosts = 0;  // of the group
  };
  std::vector<Cell> cells;
  std::map<int64_t, uint32_t> cohort;  // sample -> hosts selected; only samples with hosts
};

// The aggregator's durable state in SQLite: hosts, agent epochs with the
// series, stacks and code objects each reported, symbol tables per cluster
// and build ID (one per build, not per host), and history.
//
// Reports and their epochs' last sequences commit in one transaction, and an
// epoch reloads with everything it stored, so a restarted aggregator still
// applies each report exactly once: an ack is only sent after the commit.
//
// Two connections: the writing methods share one and must be serialized
// with each other; the reading methods (marked) share another and must be
// serialized with each other. A reader and a writer may run at once (WAL):
// queries never wait for a commit.
class Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path, const Retention& retention = Retention());

  // Who an epoch is, as stored.
  struct EpochInfo {
    int64_t epoch_id = 0, host_id = 0;
    std::string cluster, host, build_id;
    uint64_t sample_bytes = 0;
    int64_t last_report_ms = 0;
  };
  // The epoch's rows, created or found (a resumed epoch keeps what it was
  // opened with).
  absl::StatusOr<EpochInfo> OpenEpoch(const EpochIdentity& identity);
  absl::StatusOr<StoredEpoch> LoadEpoch(int64_t epoch_id);
  // The newest epoch of each host that reported at or after since_ms.
  absl::StatusOr<std::vector<EpochInfo>> RecentEpochs(int64_t since_ms);

  // Stores several reports' writes in one transaction (group commit): all or none.
  absl::Status CommitReports(absl::Span<const EpochWrite* const> writes);

  absl::Status PutSymbolTable(const std::string& cluster, const apq::v1::SymbolTable& table);
  // The key of every stored table.
  absl::StatusOr<std::vector<SymbolTableKey>> SymbolTables();

  // Stores one minute's sample of the fleet: the minute rows, this hour's
  // last and peak per path (cluster-wide, and the largest paths per host),
  // and drops what is past retention.
  absl::Status WriteSample(const FleetSample& sample);
  // Deletes epochs silent for a day that are not their host's newest, and
  // every epoch silent past host-history retention, unless attached.
  absl::Status PruneEpochs(int64_t now_millis, const absl::flat_hash_set<int64_t>& attached);

  // Reading methods.
  absl::StatusOr<std::optional<apq::v1::SymbolTable>> ReadSymbolTable(const SymbolTableKey& key);
  // Each host of the cluster with its newest epoch, by name. Messages kept
  // whole are serialized: apq.v1 Losses, Coverage, HostMemory ("" if none).
  struct HostRow {
    std::string name, kernel_release, build_id;
    int64_t last_report_ms = 0;
    uint64_t sample_bytes = 0;
    std::string losses, coverage, memory;
  };
  absl::StatusOr<std::vector<HostRow>> Hosts(const std::string& cluster);
  // Each cluster's hosts, those whose newest report is at or after
  // reporting_since_ms, and its newest report; by name.
  struct ClusterRow {
    std::string name;
    uint32_t hosts = 0;
    uint32_t hosts_reporting = 0;
    int64_t newest_report_ms = 0;
  };
  absl::StatusOr<std::vector<ClusterRow>> Clusters(int64_t reporting_since_ms);
  // Top from history, for a request with at and/or since: minute samples
  // while they are kept, then hourly ones; per-host questions (group by
  // host, or a host filter) from the hourly host rows. Process and cgroup
  // are not kept in history.
  struct HistoryQuery {
    std::string cluster, host, build_id, frame;  // filters; empty: all
    apq::v1::GroupBy group_by = apq::v1::GROUP_BY_STACK;
    int64_t at_ms = 0, since_ms = 0;  // at 0: now; since 0: at alone
    uint32_t top = 0;                 // 0: all
  };
  struct HistoryTop {
    struct Row {
      std::string key;
      double bytes = 0, variance = 0;
      uint32_t hosts = 0;
    };
    std::vector<Row> rows;  // largest first
    uint32_t hosts_selected = 0;
    // The first and last sample used, and their spacing; all 0: no sample.
    int64_t first_ms = 0, last_ms = 0, resolution_ms = 0;
  };
  absl::StatusOr<HistoryTop> TopFromHistory(const HistoryQuery& query, int64_t now_millis);
  // One side of apq diff from history: minute samples while the selector's
  // start is within their retention, else hourly rows; per-host rows (hourly)
  // for a host= selector or --by host. Sets the resolution used.
  absl::StatusOr<DiffSide> HistoryForDiff(const std::string& cluster, const apq::v1::DiffSelector& selector,
                                          apq::v1::GroupBy by, int64_t now_millis, int64_t* resolution_millis);

 private:
  Store(Database writer, Database reader, const Retention& retention)
      : db_(std::move(writer)), reader_(std::move(reader)), retention_(retention) {}
  absl::Status CreateSchema();
  // The hosts and epochs rows a Hello names, created or found, in one transaction.
  absl::Status RenamePathFunctions();
  absl::Status StoreReport(const EpochWrite& write);
  absl::StatusOr<int64_t> PathId(const std::string& folded);
  // Runs a history query (parameters: ?1..?2 the sample range, ?3 cluster,
  // ?4 build, ?5 frame text, ?6 limit, ?7 host); hosts_sampled 0: the most
  // hosts of any entry.
  absl::StatusOr<HistoryTop> HistoryRows(const HistoryQuery& query, const std::string& sql, int64_t first, int64_t last,
                                         int64_t unit_millis, uint32_t hosts_sampled);

  Database db_;
  Database reader_;
  const Retention retention_;
  absl::flat_hash_map<std::string, int64_t> path_ids_;  // folded path -> paths.path_id
};

}  // namespace apq

#endif  // APQ_AGGREGATOR_STORE_H_
