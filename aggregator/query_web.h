#ifndef APQ_AGGREGATOR_QUERY_WEB_H_
#define APQ_AGGREGATOR_QUERY_WEB_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "aggregator/fleet.h"
#include "common/http_server.h"

namespace apq {

// What the aggregator's --http listener serves: /metrics (Prometheus), the
// web view at / (one page, compiled in: aggregator/web/index.html), and the
// JSON it reads: /api/clusters, /api/top, /api/hosts, /api/explain,
// /api/diff, whose parameters are apq's flags (cluster, by, class, top,
// host, build, frame, pid, at, since, before, after), read by the builders
// apq's flags go through (common/requests.h), and whose answers are apq.v1
// messages as JSON (proto field names, common/proto_json.h).
std::vector<HttpServer::Route> HttpRoutes(Fleet* fleet, std::function<int64_t()> unix_millis);

}  // namespace apq

#endif  // APQ_AGGREGATOR_QUERY_WEB_H_
