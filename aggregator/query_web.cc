#include "aggregator/query_web.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "aggregator/query_metrics.h"
#include "aggregator/web_assets.h"
#include "cli/diff_selector.h"
#include "common/page_classes.h"
#include "common/prometheus.h"
#include "common/proto_json.h"
#include "common/status_macros.h"

namespace apq {
namespace {

using Params = HttpServer::Params;
constexpr char kJson[] = "application/json";

std::string Param(const Params& params, const std::string& name, const std::string& otherwise = "") {
  auto found = params.find(name);
  return found == params.end() || found->second.empty() ? otherwise : found->second;
}

absl::StatusOr<apq::v1::GroupBy> GroupByParam(const Params& params, const std::string& otherwise) {
  const std::string by = Param(params, "by", otherwise);
  apq::v1::GroupBy group_by;
  if (!apq::v1::GroupBy_Parse("GROUP_BY_" + absl::AsciiStrToUpper(by), &group_by)) {
    return absl::InvalidArgumentError(absl::StrCat("by must be stack, function, host, process, cgroup or build, not '", by, "'"));
  }
  return group_by;
}

absl::StatusOr<uint32_t> TopParam(const Params& params, uint32_t otherwise) {
  const std::string text = Param(params, "top");
  uint32_t top = otherwise;
  if (!text.empty() && (!absl::SimpleAtoi(text, &top) || top > 1000000)) {
    return absl::InvalidArgumentError("top must be between 0 and 1000000");
  }
  return top;
}

absl::StatusOr<std::string> Top(Fleet* fleet, const Params& params) {
  apq::v1::TopRequest request;
  request.set_cluster(Param(params, "cluster"));
  APQ_ASSIGN_OR_RETURN(const apq::v1::GroupBy by, GroupByParam(params, "stack"));
  request.set_group_by(by);
  APQ_ASSIGN_OR_RETURN(const ClassFilter filter, ParseClassFilter(Param(params, "class", "hidden")));
  request.set_class_filter(filter);
  APQ_ASSIGN_OR_RETURN(const uint32_t top, TopParam(params, 50));
  request.set_top(top);
  request.set_host(Param(params, "host"));
  request.set_frame_substring(Param(params, "frame"));
  const std::string pid = Param(params, "pid");
  uint32_t tgid = 0;
  if (!pid.empty() && !absl::SimpleAtoi(pid, &tgid)) return absl::InvalidArgumentError("pid must be a process ID");
  request.set_pid(tgid);
  APQ_ASSIGN_OR_RETURN(apq::v1::TopResponse response, fleet->Top(request));
  return ProtoJson(response);
}

absl::StatusOr<std::string> Hosts(Fleet* fleet, const Params& params) {
  apq::v1::HostsRequest request;
  request.set_cluster(Param(params, "cluster"));
  APQ_ASSIGN_OR_RETURN(apq::v1::HostsResponse response, fleet->Hosts(request));
  return ProtoJson(response);
}

// No client certificates over HTTP: whoever reaches --http reads every cluster.
absl::StatusOr<std::string> Clusters(Fleet* fleet) {
  APQ_ASSIGN_OR_RETURN(apq::v1::ClustersResponse response, fleet->Clusters([](const std::string&) { return true; }));
  return ProtoJson(response);
}

absl::StatusOr<std::string> Explain(Fleet* fleet, const Params& params) {
  apq::v1::ExplainRequest request;
  request.set_cluster(Param(params, "cluster"));
  request.set_host(Param(params, "host"));
  request.set_by_host(Param(params, "by") == "host");
  APQ_ASSIGN_OR_RETURN(const uint32_t top, TopParam(params, 10));
  request.set_top(top);
  APQ_ASSIGN_OR_RETURN(apq::v1::ExplainResponse response, fleet->Explain(request));
  return ProtoJson(response);
}

absl::StatusOr<std::string> Diff(Fleet* fleet, const Params& params, int64_t now_millis) {
  apq::v1::DiffRequest request;
  request.set_cluster(Param(params, "cluster"));
  APQ_ASSIGN_OR_RETURN(const apq::v1::GroupBy by, GroupByParam(params, "function"));
  request.set_group_by(by);
  APQ_ASSIGN_OR_RETURN(const uint32_t top, TopParam(params, 30));
  request.set_top(top);
  const absl::Time now = absl::FromUnixMillis(now_millis);
  APQ_ASSIGN_OR_RETURN(*request.mutable_before(), ParseDiffSelector(Param(params, "before"), now));
  APQ_ASSIGN_OR_RETURN(*request.mutable_after(), ParseDiffSelector(Param(params, "after"), now));
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
      {"/api/top", kJson, [fleet](const Params& params) { return Top(fleet, params); }},
      {"/api/clusters", kJson, [fleet](const Params&) { return Clusters(fleet); }},
      {"/api/hosts", kJson, [fleet](const Params& params) { return Hosts(fleet, params); }},
      {"/api/explain", kJson, [fleet](const Params& params) { return Explain(fleet, params); }},
      {"/api/diff", kJson, [fleet, unix_millis](const Params& params) { return Diff(fleet, params, unix_millis()); }},
  };
}

}  // namespace apq
