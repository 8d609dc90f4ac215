#include "agent/agent_metrics.h"

#include "common/losses.h"

namespace apq {

std::vector<MetricFamily> AgentMetrics(const AgentHealth& h) {
  auto one = [](double value) { return std::vector<MetricSample>{{{}, value}}; };
  std::vector<MetricFamily> families = {
      {"apq_agent_connected", "1 while the stream to the aggregator is up.", "gauge", one(h.connected ? 1 : 0)},
      {"apq_agent_intervals_total", "Report intervals since start.", "counter", one(static_cast<double>(h.intervals))},
      {"apq_agent_sent_bytes_total", "Bytes of reports and symbol tables sent.", "counter",
       one(static_cast<double>(h.bytes_sent))},
      {"apq_agent_reports_sent_total", "Reports sent, resends after a reconnect included.", "counter",
       one(static_cast<double>(h.reports_sent))},
      {"apq_agent_last_report_sequence", "Sequence of the newest report built (its epoch's count of reports).", "gauge",
       one(static_cast<double>(h.last_sequence))},
      {"apq_agent_unacknowledged_reports", "Reports the aggregator has not acknowledged yet.", "gauge",
       one(static_cast<double>(h.reports_unacknowledged))},
      {"apq_agent_unacknowledged_bytes", "Their bytes; past --buffer-bytes one snapshot replaces them.", "gauge",
       one(static_cast<double>(h.unacknowledged_bytes))},
      {"apq_agent_buffer_bytes", "The budget for unacknowledged reports (--buffer-bytes).", "gauge",
       one(static_cast<double>(h.buffer_bytes))},
      {"apq_agent_outstanding_bytes", "Bytes of the pages the tracker owns as of the newest report (exact).", "gauge",
       one(static_cast<double>(h.outstanding_bytes))},
      {"apq_agent_classifications_total", "Classifications of the owned pages.", "counter",
       one(static_cast<double>(h.classifications))},
      {"apq_agent_classification_seconds_total", "Time spent classifying.", "counter", one(h.classification_seconds)}};
  MetricFamily losses{"apq_agent_losses_total",
                      "Pages or events not attributed, by counter (docs/tracker.md); absent: not countable here.",
                      "counter",
                      {}};
  for (const auto& [name, value] : LossValues(h.losses)) {
    if (value < 0) continue;  // recursion_misses where the kernel cannot count them
    losses.samples.push_back({{{"counter", name}}, static_cast<double>(value)});
  }
  families.push_back(std::move(losses));
  MetricFamily classes{"apq_agent_class_bytes",
                       "The owned pages by how /proc/meminfo counts them, at the last "
                       "classification.",
                       "gauge",
                       {}};
  if (h.class_bytes) {
    for (int c = 0; c < kNumPageClasses; ++c) {
      classes.samples.push_back(
          {{{"class", PageClassName(static_cast<PageClass>(c))}}, static_cast<double>((*h.class_bytes)[c])});
    }
  }
  families.push_back(std::move(classes));
  return families;
}

}  // namespace apq
