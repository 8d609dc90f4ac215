// What apq-agent --local prints each interval (apq.v1.LocalReport): the
// host's paths, as apq top answers them, with the agent's own counts
// around them.
#ifndef APQ_AGENT_LOCAL_REPORT_H_
#define APQ_AGENT_LOCAL_REPORT_H_

#include <string>

#include "agent/tracker_snapshot.h"
#include "apq/v1/apq.pb.h"
#include "common/cgroup_names.h"
#include "common/display.h"
#include "common/page_census.h"
#include "common/sampling.h"

namespace apq {

// The census at start; memcgs names the cgroups its unflagged pages are charged to.
apq::v1::StartCensus StartCensusOf(const PageCensus& census, CgroupNames& memcgs);

// The agent's counts of a snapshot: mode, events, bytes outstanding,
// losses. The caller adds coverage, memory, the census, request and answer.
apq::v1::LocalReport LocalReportOf(const TrackerSnapshot& snapshot, const SamplingPlan& sampling,
                                   double seconds_tracing);

std::string FormatLocalTable(const apq::v1::LocalReport& report, const TableStyle& style);
// Loss and coverage lines, for stderr beside folded or pprof output.
std::string FormatLossSummary(const apq::v1::LocalReport& report);

}  // namespace apq

#endif  // APQ_AGENT_LOCAL_REPORT_H_
