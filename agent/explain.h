#ifndef APQ_AGENT_EXPLAIN_H_
#define APQ_AGENT_EXPLAIN_H_

#include "agent/report.h"
#include "apq/v1/apq.pb.h"
#include "common/meminfo_balance.h"

namespace apq {

// `apq-agent --local --explain`: /proc/meminfo reconciled with a report of
// hidden pages (a classified report, class filter hidden), its paths and
// their processes as the hidden, traced term.
apq::v1::Explanation ExplainLocally(const MeminfoBalance& balance, const Report& hidden);

}  // namespace apq

#endif  // APQ_AGENT_EXPLAIN_H_
