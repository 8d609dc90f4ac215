#ifndef APQ_AGENT_FLEET_MODE_H_
#define APQ_AGENT_FLEET_MODE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "agent/bpf_page_tracker.h"
#include "agent/classification_schedule.h"
#include "common/transport.h"

namespace apq {

struct FleetOptions {
  std::string aggregator;  // HOST:PORT
  ClientTls tls;           // no CA: plaintext
  std::string cluster;
  std::string host;  // empty: this machine's hostname
  double interval_seconds = 10;
  double duration_seconds = 0;                            // 0: until SIGINT or SIGTERM
  size_t buffer_bytes = 64 << 20;                         // unacknowledged reports kept for resending
  double classify_seconds = kDefaultFullClassifySeconds;  // between full classifications; 0: never classify
  std::string ready_file;                                 // --ready-file: written once tracing and /metrics run
  std::string metrics_address;                            // HOST:PORT of /metrics; empty: none
  BpfTrackerOptions tracker;
};

// Streams this host's per-stack counters to the aggregator every interval:
// deltas since the previous report, resent until acknowledged, across
// reconnects; the tracker keeps counting while the aggregator is away.
// Each report also carries the pages by class of the series whose pages
// changed (ClassificationSchedule) and the host's /proc/meminfo, for
// `apq top --class` and `apq explain`.
absl::Status RunFleet(const FleetOptions& options);

}  // namespace apq

#endif  // APQ_AGENT_FLEET_MODE_H_
