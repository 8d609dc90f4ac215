// libFuzzer target: an agent's stream as the aggregator applies it. The
// input is a sequence of messages, each prefixed by its 2-byte little-endian
// length; every report is applied to one epoch (EpochState, the rule that
// the aggregator runs on every byte from the wire) and what would be stored
// is made from it. Nothing may crash, and a refused report changes nothing.
#include <cstddef>
#include <cstdint>

#include "aggregator/epoch_rows.h"
#include "aggregator/fleet_epoch.h"
#include "apq/v1/apq.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  apq::EpochState state;
  while (size >= 2) {
    const size_t length = std::min<size_t>(size - 2, data[0] | (size_t{data[1]} << 8));
    apq::v1::AgentMessage message;
    const bool parsed = message.ParseFromArray(data + 2, static_cast<int>(length));
    data += 2 + length;
    size -= 2 + length;
    if (!parsed || !message.has_report()) continue;
    const uint64_t before = state.last_sequence();
    const size_t series_before = state.series().size();
    absl::StatusOr<apq::EpochState::Outcome> outcome = state.Apply(message.report());
    if (!outcome.ok() && (state.last_sequence() != before || state.series().size() != series_before)) {
      __builtin_trap();  // a refused report must leave the epoch as it was
    }
    if (outcome.ok() && *outcome == apq::EpochState::Outcome::kApplied) {
      apq::EpochWrite write = apq::WriteOf(1, state, message.report(), 0);
      if (write.sequence != state.last_sequence()) __builtin_trap();
    }
  }
  return 0;
}
