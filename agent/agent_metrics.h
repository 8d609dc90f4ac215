#ifndef APQ_AGENT_AGENT_METRICS_H_
#define APQ_AGENT_AGENT_METRICS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "apq/v1/apq.pb.h"
#include "common/page_classes.h"
#include "common/prometheus.h"

namespace apq {

// What a fleet agent shows on --metrics, as of its last interval.
struct AgentHealth {
  bool connected = false;
  uint64_t intervals = 0;
  uint64_t bytes_sent = 0;              // reports and symbol tables, since start
  uint64_t reports_sent = 0;            // with resends after reconnects
  uint64_t last_sequence = 0;           // of the newest report built
  uint64_t reports_unacknowledged = 0;  // these two as of the scrape
  uint64_t unacknowledged_bytes = 0;
  uint64_t buffer_bytes = 0;       // --buffer-bytes
  apq::v1::Losses losses;          // cumulative, as reported
  uint64_t outstanding_bytes = 0;  // pages owned as of the newest report (exact in either mode)
  // The host's owned pages by class at the last classification.
  std::optional<std::array<uint64_t, kNumPageClasses>> class_bytes;
  uint64_t classifications = 0;
  double classification_seconds = 0;
};

// The agent's /metrics: its health, every loss counter (named as
// apq.v1.Losses), and the host's bytes by class.
std::vector<MetricFamily> AgentMetrics(const AgentHealth& health);

}  // namespace apq

#endif  // APQ_AGENT_AGENT_METRICS_H_
