#ifndef APQ_AGGREGATOR_QUERY_EXPLAIN_H_
#define APQ_AGGREGATOR_QUERY_EXPLAIN_H_

#include <vector>

#include "absl/status/statusor.h"
#include "aggregator/fleet_epoch.h"
#include "aggregator/query_now.h"
#include "aggregator/query_paths.h"
#include "apq/v1/apq.pb.h"

namespace apq {

// `apq explain` over the given epochs: each host's /proc/meminfo at its last
// classification reconciled with its hidden pages as classified then, summed
// over the hosts (or one explanation per host with request.by_host). Hosts
// that have not classified yet are left out, and a note says how many.
absl::StatusOr<apq::v1::ExplainResponse> ExplainEpochs(const std::vector<const HostEpoch*>& epochs,
                                                       const apq::v1::ExplainRequest& request, PathNamer* namer);

}  // namespace apq

#endif  // APQ_AGGREGATOR_QUERY_EXPLAIN_H_
