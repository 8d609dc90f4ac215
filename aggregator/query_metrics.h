#ifndef APQ_AGGREGATOR_QUERY_METRICS_H_
#define APQ_AGGREGATOR_QUERY_METRICS_H_

#include <vector>

#include "absl/status/statusor.h"
#include "aggregator/fleet.h"
#include "common/prometheus.h"

namespace apq {

// The largest functions per cluster exported as gauges: bounded, so that a
// fleet's paths do not become unbounded label sets.
inline constexpr int kMetricsPathsPerCluster = 10;

// The aggregator's /metrics: itself (reports stored, failed commits, symbol
// tables, hosts and streams), each host (age of its last report, stored
// sequence, bytes outstanding and hidden now) and each cluster (bytes by
// class, the largest functions).
absl::StatusOr<std::vector<MetricFamily>> AggregatorMetrics(Fleet& fleet, int64_t now_millis);

}  // namespace apq

#endif  // APQ_AGGREGATOR_QUERY_METRICS_H_
