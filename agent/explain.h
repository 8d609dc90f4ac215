#ifndef APQ_AGENT_EXPLAIN_H_
#define APQ_AGENT_EXPLAIN_H_

#include <string>

#include "agent/report.h"
#include "common/meminfo_balance.h"

namespace apq {

// `apq-agent --local --explain`: /proc/meminfo reconciled with a report of
// hidden pages (a classified report, class filter hidden):
//   MemTotal = MemFree + visible fields + hidden traced (by path) + hidden not traced.
std::string FormatExplainTable(const MeminfoBalance& balance, const Report& hidden);
std::string FormatExplainJson(const MeminfoBalance& balance, const Report& hidden);

}  // namespace apq

#endif  // APQ_AGENT_EXPLAIN_H_
