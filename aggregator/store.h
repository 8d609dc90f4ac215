#ifndef APQ_AGGREGATOR_STORE_H_
#define APQ_AGGREGATOR_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "aggregator/diff.h"
#include "aggregator/epoch_state.h"
#include "aggregator/fleet_view.h"
#include "aggregator/sqlite.h"
#include "apq/v1/apq.pb.h"

namespace apq {

// How long history is kept at each resolution.
struct Retention {
  int64_t minute_millis = 2 * 86'400'000LL;      // per (cluster, build, path), a sample a minute
  int64_t hour_millis = 90 * 86'400'000LL;       // per (cluster, build, path), last and peak of each hour
  int64_t host_hour_millis = 14 * 86'400'000LL;  // per (host, path), the largest paths of each hour
};

// A host keeps this many paths per hour in host history; the rest are summed.
inline constexpr size_t kHostPathsPerHour = 16;

// The aggregator's durable state in SQLite: hosts, agent epochs with the
// series, stacks and code objects each reported, symbol tables per build ID
// (one per build, not per host), and history.
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
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path,
                                                     const Retention& retention = Retention());

  // Who an epoch is, as stored.
  struct EpochInfo {
    int64_t epoch_id = 0, host_id = 0;
    std::string cluster, host, build_id;
    uint64_t sample_bytes = 0;
    int64_t last_report_ms = 0;
  };
  // The epoch a Hello names, created or reloaded; fills *state with it.
  absl::StatusOr<EpochInfo> OpenEpoch(const apq::v1::Hello& hello, EpochState* state);
  absl::StatusOr<EpochState> LoadEpoch(int64_t epoch_id);
  // The newest epoch of each host that reported at or after since_ms.
  absl::StatusOr<std::vector<EpochInfo>> RecentEpochs(int64_t since_ms);

  // A report already applied to its epoch in memory, with the series it
  // changed as they now are and those it retired.
  // The epoch's last report time is the aggregator's clock at receipt: an
  // agent's clock cannot make its host look fresh, or old.
  struct AppliedReport {
    int64_t epoch_id = 0;
    const apq::v1::Report* report = nullptr;
    int64_t received_millis = 0;
    std::vector<std::pair<uint32_t, EpochState::Series>> series;
    std::vector<uint32_t> retired;  // series the epoch no longer holds
  };
  static AppliedReport Applied(int64_t epoch_id, const EpochState& state, const apq::v1::Report& report,
                               int64_t received_millis);
  // Stores several reports in one transaction (group commit): all or none.
  absl::Status CommitReports(absl::Span<const AppliedReport* const> reports);

  absl::Status PutSymbolTable(const apq::v1::SymbolTable& table);
  // (object, build ID) of every stored table.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> SymbolTables();

  // Stores one minute's sample of the fleet: the minute rows, this hour's
  // last and peak per path (cluster-wide, and the largest paths per host),
  // and drops what is past retention.
  absl::Status WriteSample(const FleetSample& sample);
  // Deletes epochs silent for a day that are not their host's newest, and
  // every epoch silent past host-history retention, unless attached.
  absl::Status PruneEpochs(int64_t now_millis, const absl::flat_hash_set<int64_t>& attached);

  // Reading methods.
  absl::StatusOr<std::optional<apq::v1::SymbolTable>> ReadSymbolTable(const std::string& object,
                                                                      const std::string& build_id);
  absl::StatusOr<apq::v1::HostsResponse> Hosts(const apq::v1::HostsRequest& request);
  // Top from history, for a request with at and/or since: minute samples
  // while they are kept, then hourly ones; per-host questions (group by
  // host, or a host filter) from the hourly host rows. Process and cgroup
  // are not kept in history.
  absl::StatusOr<apq::v1::TopResponse> TopFromHistory(const apq::v1::TopRequest& request, int64_t now_millis);
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
  absl::Status OpenEpochRow(const apq::v1::Hello& hello, EpochInfo* info);
  absl::Status RenamePathFunctions();
  absl::Status StoreReport(const AppliedReport& applied);
  absl::StatusOr<int64_t> PathId(const std::string& folded);
  // Runs a history query (parameters: ?1..?2 the sample range, ?3 cluster,
  // ?4 build, ?5 frame text, ?6 limit, ?7 host); hosts_sampled 0: the most
  // hosts of any entry.
  absl::StatusOr<apq::v1::TopResponse> HistoryRows(const apq::v1::TopRequest& request, const std::string& sql,
                                                   int64_t first, int64_t last, int64_t unit_millis,
                                                   uint32_t hosts_sampled);

  Database db_;
  Database reader_;
  const Retention retention_;
  absl::flat_hash_map<std::string, int64_t> path_ids_;  // folded path -> paths.path_id
};

}  // namespace apq

#endif  // APQ_AGGREGATOR_STORE_H_
