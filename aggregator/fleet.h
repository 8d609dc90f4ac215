#ifndef APQ_AGGREGATOR_FLEET_H_
#define APQ_AGGREGATOR_FLEET_H_

#include <atomic>
#include <functional>
#include <optional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "aggregator/admission.h"
#include "aggregator/fleet_epoch.h"
#include "aggregator/query_paths.h"
#include "aggregator/store.h"
#include "apq/v1/apq.pb.h"

namespace apq {

// Names present and within their size limits.
absl::Status ValidateHello(const apq::v1::Hello& hello);

// How much of the aggregator's memory one cluster may take: hosts with an
// epoch in memory, and the stacks those epochs define. A host or report
// beyond them is refused (ResourceExhausted, counted), never half-applied.
struct ClusterLimits {
  size_t hosts = 100'000;
  size_t stacks = size_t{1} << 24;
};

// What both services share: the store, and in memory the newest epoch of
// every host that reported recently (the streams' epochs among them), which
// answers "now" without reading the file.
//
// Reports are group-committed: a stream's report is applied in memory, then
// waits while one committer thread stores every report queued meanwhile in
// one transaction; the ack follows the commit. Queries for "now" read the
// memory, and history queries read the file through their own connection:
// neither waits for a commit.
class Fleet {
 public:
  using Clock = std::function<int64_t()>;  // unix milliseconds
  // Loads the epochs that reported within fresh_millis and starts the committer.
  static absl::StatusOr<std::unique_ptr<Fleet>> Start(std::unique_ptr<Store> store, int64_t fresh_millis, Clock clock,
                                                      ClusterLimits limits = {});
  ~Fleet();  // commits what is queued, then stops

  absl::StatusOr<int64_t> Attach(const apq::v1::Hello& hello, uint64_t* last_sequence);
  void Detach(int64_t epoch_id);
  // Applies a report to its epoch in memory at once; `done` runs when it is
  // durably stored (on the committer thread, with the group's outcome), or
  // at once when there is nothing to store (a duplicate, a gap, a refusal).
  using AppliedCallback = std::function<void(absl::StatusOr<EpochState::Outcome>)>;
  void ApplyThen(int64_t epoch_id, apq::v1::Report report, AppliedCallback done);

  // Symbol tables are uploaded once per (object, build ID) for each
  // cluster: of all the cluster's streams that need one, a single one is
  // asked at a time, and another only if that one ends or has not uploaded
  // within kSymbolUploadMillis. (A fleet reconnecting at once would otherwise
  // send the same few MiB from every host.) A table names only the frames
  // of its uploader's cluster: an agent, which may report for one cluster
  // only, cannot rename another cluster's paths.
  enum class SymbolNeed { kStored, kAskThisStream, kAskedElsewhere };
  static constexpr int64_t kSymbolUploadMillis = 60'000;
  SymbolNeed NeedSymbols(const std::string& object, const std::string& build_id, int64_t epoch_id);
  // Stores a table that epoch_id's stream was asked for; true if stored. A
  // table of a build already stored (a slow upload that another overtook)
  // or one not asked of this epoch (its ask went to another stream) is
  // ignored: no stream can rename frames that other hosts' tables name.
  absl::StatusOr<bool> PutSymbols(int64_t epoch_id, const apq::v1::SymbolTable& table);
  absl::StatusOr<apq::v1::TopResponse> Top(const apq::v1::TopRequest& request);
  absl::StatusOr<apq::v1::HostsResponse> Hosts(const apq::v1::HostsRequest& request);
  // Every cluster with a host, for callers that may read it.
  absl::StatusOr<apq::v1::ClustersResponse> Clusters(const std::function<bool(const std::string&)>& may_read);
  absl::StatusOr<apq::v1::ExplainResponse> Explain(const apq::v1::ExplainRequest& request);
  // apq diff: two selections of history compared group by group.
  absl::StatusOr<apq::v1::DiffResponse> Diff(const apq::v1::DiffRequest& request);
  // What /metrics shows of the aggregator itself and of each host it holds.
  struct Stats {
    uint64_t reports_stored = 0;  // since start
    uint64_t commits_failed = 0;
    size_t symbol_tables = 0;
    struct Host {
      std::string cluster, host, build_hex;
      int64_t last_report_ms = 0;
      uint64_t stored_sequence = 0;
      int streams = 0;
      bool fresh = false;  // part of "now"
    };
    std::vector<Host> hosts;  // the newest epoch of each host in memory
  };
  Stats GetStats();
  // Refusals of every kind: the services count theirs here too.
  RefusalCounts& refusals() { return refusals_; }
  int64_t NowMillis() const { return clock_(); }

  // Stores the fleet's state now as the history sample of this minute,
  // forgets epochs gone stale, and applies retention. Run once a minute.
  absl::Status Sample();

 private:
  struct Live {
    HostEpoch epoch;
    int streams = 0;
    // The last report in the file; epoch.state may be ahead of it by the
    // reports waiting for their commit. Only stored reports are acked.
    uint64_t stored_sequence = 0;
  };
  struct Pending {
    uint64_t sequence = 0;
    std::optional<EpochWrite> write;  // none: nothing to write
    AppliedCallback done;
    // A duplicate of a report applied but not yet stored: answered once it
    // is (after the commit it waits for), or refused if that commit failed.
    int64_t duplicate_of_epoch = 0;
  };
  Fleet(std::unique_ptr<Store> store, int64_t fresh_millis, Clock clock, ClusterLimits limits);
  // Keeps clusters_ in step with newest_epoch_ and epochs_.
  void AddLive(Live& live, int64_t epoch_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_);
  void ForgetLive(const Live& live, int64_t epoch_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_);
  // Moves a cluster's stack count from an epoch's old number of stacks to its new one.
  void Restack(const std::string& cluster, size_t before, size_t after) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_);
  // Refuses a report that would take its cluster over its stack limit.
  absl::Status CheckClusterStacks(const HostEpoch& epoch, const apq::v1::Report& report)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_);
  // The key of the table of (object, build ID) that names epoch_id's
  // frames; nullopt if the epoch is not in memory.
  std::optional<SymbolTableKey> TableKeyOf(int64_t epoch_id, const std::string& object, const std::string& build_id);
  void CommitLoop();
  // Stores a group of writes; on failure takes their epochs back to the file's state.
  absl::Status Commit(const std::vector<const EpochWrite*>& writes);
  // Gives a pending report its outcome once its group's commit is known.
  void Answer(Pending& pending, const absl::Status& commit);
  // The newest epoch of each host of the request's cluster that reported
  // within fresh_millis_, after the request's host and build filters.
  std::vector<const HostEpoch*> FreshEpochs(const apq::v1::TopRequest& request, int64_t now_millis)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_);

  // The store's writing methods run under store_mu_, its reading methods
  // under reader_mu_. Lock order: store_mu_, state_mu_, then reader_mu_,
  // queue_mu_ or symbols_mu_.
  std::unique_ptr<Store> store_;
  absl::Mutex store_mu_;
  absl::Mutex reader_mu_ ABSL_ACQUIRED_AFTER(state_mu_);
  absl::Mutex state_mu_ ABSL_ACQUIRED_AFTER(store_mu_);
  absl::flat_hash_map<int64_t, Live> epochs_ ABSL_GUARDED_BY(state_mu_);
  absl::flat_hash_map<int64_t, int64_t> newest_epoch_ ABSL_GUARDED_BY(state_mu_);  // by host ID
  PathNamer namer_ ABSL_GUARDED_BY(state_mu_);
  struct ClusterLoad {
    absl::flat_hash_set<std::string> hosts;  // hosts with an epoch in memory
    size_t stacks = 0;                       // defined by those epochs
  };
  absl::flat_hash_map<std::string, ClusterLoad> clusters_ ABSL_GUARDED_BY(state_mu_);
  absl::Mutex queue_mu_ ABSL_ACQUIRED_AFTER(state_mu_);
  std::vector<std::unique_ptr<Pending>> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  struct Upload {
    absl::flat_hash_set<int64_t> asked;  // epochs asked whose streams are open
    int64_t asked_millis = 0;            // when the latest was asked
  };
  absl::Mutex symbols_mu_ ABSL_ACQUIRED_AFTER(state_mu_);
  absl::flat_hash_set<SymbolTableKey> tables_stored_ ABSL_GUARDED_BY(symbols_mu_);
  absl::flat_hash_map<SymbolTableKey, Upload> uploads_ ABSL_GUARDED_BY(symbols_mu_);  // asked, not yet stored

  std::atomic<uint64_t> reports_stored_{0}, commits_failed_{0};
  RefusalCounts refusals_;
  const int64_t fresh_millis_;
  const ClusterLimits limits_;
  const Clock clock_;
  std::thread committer_;
};

}  // namespace apq

#endif  // APQ_AGGREGATOR_FLEET_H_
