#ifndef APQ_AGGREGATOR_STORE_H_
#define APQ_AGGREGATOR_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "aggregator/epoch_state.h"
#include "aggregator/sqlite.h"
#include "apq/v1/apq.pb.h"
#include "common/kernel_symbols.h"

namespace apq {

// The aggregator's durable state in SQLite: hosts, agent epochs with the
// series, stacks and code objects each reported, and symbol tables per
// build ID (one per build, not per host).
//
// A report and its epoch's last sequence commit in one transaction, and an
// epoch reloads with everything it stored, so a restarted aggregator still
// applies each report exactly once: an ack is only sent after the commit.
class Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);

  // The epoch a Hello names, created or reloaded; fills *state with it.
  absl::StatusOr<int64_t> OpenEpoch(const apq::v1::Hello& hello, EpochState* state);
  // Applies the report to the epoch and stores the result. On an error the
  // transaction is rolled back and *state reloaded: memory and file agree.
  absl::StatusOr<EpochState::Outcome> ApplyReport(int64_t epoch_id, EpochState* state, const apq::v1::Report& report);

  absl::Status PutSymbolTable(const apq::v1::SymbolTable& table);
  absl::StatusOr<bool> HasSymbolTable(const std::string& object, const std::string& build_id);

  // The fleet's top call paths now: the newest epoch of each host of the
  // cluster that reported within `fresh_millis` of now_millis. `live` may
  // give an epoch's state from memory (streams being served), sparing a
  // read of the file; epochs it does not give are loaded.
  using LiveEpochs = std::function<const EpochState*(int64_t epoch_id)>;
  absl::StatusOr<apq::v1::TopResponse> Top(const apq::v1::TopRequest& request, int64_t now_millis,
                                           int64_t fresh_millis, const LiveEpochs& live = nullptr);
  absl::StatusOr<apq::v1::HostsResponse> Hosts(const apq::v1::HostsRequest& request);

 private:
  explicit Store(Database db) : db_(std::move(db)) {}
  absl::Status CreateSchema();
  absl::StatusOr<EpochState> LoadEpoch(int64_t epoch_id);
  absl::Status StoreReport(int64_t epoch_id, const EpochState& state, const apq::v1::Report& report);

  // Function names of a stack, root first, allocator frames removed; frames
  // of objects without a symbol table are named "object+0xoffset", and
  // *complete is false then.
  absl::StatusOr<std::vector<std::string>> Symbolize(const apq::v1::StackDefinition& stack,
                                                     const absl::flat_hash_map<uint32_t, apq::v1::CodeObject>& objects,
                                                     bool* complete);
  absl::StatusOr<const KernelSymbols*> SymbolsOf(const std::string& object, const std::string& build_id);

  Database db_;
  // Parsed symbol tables by (object, build ID); a missing one is looked up
  // again next time, as an agent may have uploaded it since.
  absl::flat_hash_map<std::pair<std::string, std::string>, std::unique_ptr<KernelSymbols>> symbols_;
  // Fully symbolized paths by (epoch, stack): a stack never changes within
  // its epoch. Bounded: cleared when it grows past kMaxCachedPaths.
  absl::flat_hash_map<std::pair<int64_t, uint32_t>, std::vector<std::string>> paths_;
};

}  // namespace apq

#endif  // APQ_AGGREGATOR_STORE_H_
