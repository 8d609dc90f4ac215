#include "aggregator/query_web.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "aggregator/query_metrics.h"
#include "aggregator/web_assets.h"
#include "common/page_classes.h"
#include "common/prometheus.h"
#include "common/proto_json.h"
#include "common/requests.h"
#include "common/status_macros.h"

namespace apq {
namespace {

using Params = HttpServer::Params;
constexpr char kJson[] = "application/json";

RequestParams ParamsOf(const Params& params) { return RequestParams(params.begin(), params.end()); }

absl::StatusOr<std::string> Top(Fleet* fleet, const Params& params, int64_t now_millis) {
  APQ_ASSIGN_OR_RETURN(const apq::v1::TopRequest request,
                       TopRequestOf(ParamsOf(params), absl::FromUnixMillis(now_millis)));
  APQ_ASSIGN_OR_RETURN(apq::v1::TopResponse response, fleet->Top(request));
  return ProtoJson(response);
}

absl::StatusOr<std::string> Hosts(Fleet* fleet, const Params& params) {
  apq::v1::HostsRequest request;
  if (auto cluster = params.find("cluster"); cluster != params.end()) request.set_cluster(cluster->second);
  APQ_ASSIGN_OR_RETURN(apq::v1::HostsResponse response, fleet->Hosts(request));
  return ProtoJson(response);
}

// No client certificates over HTTP: whoever reaches --http reads every cluster.
absl::StatusOr<std::string> Clusters(Fleet* fleet) {
  APQ_ASSIGN_OR_RETURN(apq::v1::ClustersResponse response, fleet->Clusters([](const std::string&) { return true; }));
  return ProtoJson(response);
}

absl::StatusOr<std::string> Explain(Fleet* fleet, const Params& params) {
  APQ_ASSIGN_OR_RETURN(const apq::v1::ExplainRequest request, ExplainRequestOf(ParamsOf(params)));
  APQ_ASSIGN_OR_RETURN(apq::v1::ExplainResponse response, fleet->Explain(request));
  return ProtoJson(response);
}

absl::StatusOr<std::string> Diff(Fleet* fleet, const Params& params, int64_t now_millis) {
  APQ_ASSIGN_OR_RETURN(const apq::v1::DiffRequest request,
                       DiffRequestOf(ParamsOf(params), absl::FromUnixMillis(now_millis)));
  APQ_ASSIGN_OR_RETURN(apq::v1::DiffResponse response, fleet->Diff(request));
  return ProtoJson(response);
}

}  // namespace

std::vector<HttpServer::Route> HttpRoutes(Fleet* fleet, std::function<int64_t()> unix_millis) {
  return {
      {"/metrics", kPrometheusContentType,
       [fleet, unix_millis](const Params&) -> absl::StatusOr<std::string> {
         APQ_ASSIGN_OR_RETURN(const std::vector<MetricFamily> families, AggregatorMetrics(*fleet, unix_millis()));
         return PrometheusText(families);
       }},
      {"/", "text/html; charset=utf-8", [](const Params&) -> absl::StatusOr<std::string> { return kIndexHtml; }},
      {"/api/top", kJson, [fleet, unix_millis](const Params& params) { return Top(fleet, params, unix_millis()); }},
      {"/api/clusters", kJson, [fleet](const Params&) { return Clusters(fleet); }},
      {"/api/hosts", kJson, [fleet](const Params& params) { return Hosts(fleet, params); }},
      {"/api/explain", kJson, [fleet](const Params& params) { return Explain(fleet, params); }},
      {"/api/diff", kJson, [fleet, unix_millis](const Params& params) { return Diff(fleet, params, unix_millis()); }},
  };
}

}  // namespace apq
