#ifndef APQ_AGGREGATOR_EPOCH_ROWS_H_
#define APQ_AGGREGATOR_EPOCH_ROWS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "aggregator/fleet_epoch.h"
#include "aggregator/store.h"
#include "apq/v1/apq.pb.h"

namespace apq {

// The fleet's epochs and the store's rows, each way.
// What storing `report`, just applied to `state`, writes: the series it
// changed as they now are, and those it retired.
EpochWrite WriteOf(int64_t epoch_id, const EpochState& state, const apq::v1::Report& report, int64_t received_millis);
// The epoch a Hello names, created or reloaded from the file; fills *state.
absl::StatusOr<Store::EpochInfo> OpenEpochState(Store& store, const apq::v1::Hello& hello, EpochState* state);
// An epoch as stored; DataLoss names a row that does not parse.
absl::StatusOr<EpochState> LoadEpochState(Store& store, int64_t epoch_id);

}  // namespace apq

#endif  // APQ_AGGREGATOR_EPOCH_ROWS_H_
