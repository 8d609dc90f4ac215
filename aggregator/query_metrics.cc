#include "aggregator/query_metrics.h"

#include <map>

#include "common/page_classes.h"
#include "common/status_macros.h"

namespace apq {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A cluster's fleet now, grouped as asked.
absl::StatusOr<apq::v1::TopResponse> TopOf(Fleet& fleet, const std::string& cluster, apq::v1::GroupBy by,
                                           apq::v1::ClassFilter filter, uint32_t top) {
  apq::v1::TopRequest request;
  request.set_cluster(cluster);
  request.set_group_by(by);
  request.set_class_filter(filter);
  request.set_top(top);
  return fleet.Top(request);
}

}  // namespace

absl::StatusOr<std::vector<MetricFamily>> AggregatorMetrics(Fleet& fleet, int64_t now_millis) {
  const Fleet::Stats stats = fleet.GetStats();
  std::vector<MetricFamily> families = {{"apq_aggregator_reports_stored_total",
                                         "Agent reports stored (and acknowledged) since start.",
                                         "counter",
                                         {{{}, static_cast<double>(stats.reports_stored)}}},
                                        {"apq_aggregator_commit_failures_total",
                                         "Group commits that failed (their agents resend).",
                                         "counter",
                                         {{{}, static_cast<double>(stats.commits_failed)}}},
                                        {"apq_aggregator_symbol_tables",
                                         "Symbol tables stored (one per cluster, code object and build).",
                                         "gauge",
                                         {{{}, static_cast<double>(stats.symbol_tables)}}}};
  MetricFamily refused{"apq_aggregator_refused_total",
                       "Peers and messages refused since start, by reason (certificate grants, size and rate limits).",
                       "counter",
                       {}};
  for (int r = 0; r < kNumRefusals; ++r) {
    const auto refusal = static_cast<Refusal>(r);
    refused.samples.push_back({{{"reason", RefusalLabel(refusal)}}, static_cast<double>(fleet.refusals().Of(refusal))});
  }
  families.push_back(std::move(refused));
  MetricFamily hosts{"apq_cluster_hosts", "Hosts part of \"now\" (reported within --fresh-seconds).", "gauge", {}};
  MetricFamily streams{"apq_cluster_streams", "Agent streams connected.", "gauge", {}};
  MetricFamily age{
      "apq_host_last_report_age_seconds", "Seconds since the host's last stored report (ingest lag).", "gauge", {}};
  MetricFamily sequence{
      "apq_host_stored_sequence", "The host's last stored report sequence in its epoch.", "gauge", {}};
  std::map<std::string, std::pair<double, double>> per_cluster;  // hosts, streams
  for (const Fleet::Stats::Host& host : stats.hosts) {
    const Labels labels = {{"cluster", host.cluster}, {"host", host.host}, {"build", host.build_hex}};
    age.samples.push_back({labels, (now_millis - host.last_report_ms) / 1000.0});
    sequence.samples.push_back({labels, static_cast<double>(host.stored_sequence)});
    auto& [fresh, connected] = per_cluster[host.cluster];
    fresh += host.fresh ? 1 : 0;
    connected += host.streams;
  }
  MetricFamily host_bytes{
      "apq_host_outstanding_bytes",
      "Bytes the host's page-allocator pages hold now, by class (hidden, visible, or unclassified: allocated "
      "since the host's last classification) "
      "(estimated when sampled).",
      "gauge",
      {}};
  MetricFamily cluster_bytes{
      "apq_cluster_outstanding_bytes", "Bytes the cluster's pages hold now, by class.", "gauge", {}};
  MetricFamily paths{"apq_cluster_function_bytes",
                     "Bytes held now by the cluster's largest functions (first caller outside the memory APIs).",
                     "gauge",
                     {}};
  for (const auto& [cluster, counts] : per_cluster) {
    hosts.samples.push_back({{{"cluster", cluster}}, counts.first});
    streams.samples.push_back({{{"cluster", cluster}}, counts.second});
    // Hidden, visible, and what is not classified yet: all less the two.
    std::map<std::string, double> unclassified;
    double unclassified_total = 0;
    for (const apq::v1::ClassFilter filter :
         {apq::v1::CLASS_FILTER_ALL, apq::v1::CLASS_FILTER_HIDDEN, apq::v1::CLASS_FILTER_VISIBLE}) {
      APQ_ASSIGN_OR_RETURN(const apq::v1::TopResponse by_host,
                           TopOf(fleet, cluster, apq::v1::GROUP_BY_HOST, filter, 0));
      const double sign = filter == apq::v1::CLASS_FILTER_ALL ? 1 : -1;
      double total = 0;
      for (const apq::v1::TopEntry& entry : by_host.entries()) {
        unclassified[entry.key()] += sign * entry.bytes_outstanding();
        total += entry.bytes_outstanding();
        if (filter == apq::v1::CLASS_FILTER_ALL) continue;
        host_bytes.samples.push_back({{{"cluster", cluster}, {"host", entry.key()}, {"class", ClassFilterName(filter)}},
                                      entry.bytes_outstanding()});
      }
      unclassified_total += sign * total;
      if (filter == apq::v1::CLASS_FILTER_ALL) continue;
      cluster_bytes.samples.push_back({{{"cluster", cluster}, {"class", ClassFilterName(filter)}}, total});
    }
    for (const auto& [host, bytes] : unclassified) {
      host_bytes.samples.push_back(
          {{{"cluster", cluster}, {"host", host}, {"class", "unclassified"}}, std::max(bytes, 0.0)});
    }
    cluster_bytes.samples.push_back(
        {{{"cluster", cluster}, {"class", "unclassified"}}, std::max(unclassified_total, 0.0)});
    APQ_ASSIGN_OR_RETURN(
        const apq::v1::TopResponse functions,
        TopOf(fleet, cluster, apq::v1::GROUP_BY_FUNCTION, apq::v1::CLASS_FILTER_ALL, kMetricsPathsPerCluster));
    for (const apq::v1::TopEntry& entry : functions.entries()) {
      paths.samples.push_back({{{"cluster", cluster}, {"function", entry.key()}}, entry.bytes_outstanding()});
    }
  }
  for (MetricFamily* family : {&hosts, &streams, &age, &sequence, &host_bytes, &cluster_bytes, &paths}) {
    families.push_back(std::move(*family));
  }
  return families;
}

}  // namespace apq
