#ifndef APQ_COMMON_PROMETHEUS_H_
#define APQ_COMMON_PROMETHEUS_H_

#include <string>
#include <utility>
#include <vector>

namespace apq {

// Metrics in Prometheus' text exposition format (0.0.4), for /metrics.
struct MetricSample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

struct MetricFamily {
  std::string name;  // apq_...; counters end in _total
  std::string help;
  std::string type;  // "gauge" or "counter"
  std::vector<MetricSample> samples;
};

// The families as text: HELP and TYPE lines, then one line per sample, label
// values escaped (backslash, quote, newline). A family without samples is
// left out.
std::string PrometheusText(const std::vector<MetricFamily>& families);

inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace apq

#endif  // APQ_COMMON_PROMETHEUS_H_
