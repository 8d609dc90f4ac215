// apq's tables: what a person reads of the aggregator's answers (json is
// the messages themselves, common/proto_json). Pure functions of the
// answer, so that the CLI's output is unit-tested.
#ifndef APQ_COMMON_TABLES_H_
#define APQ_COMMON_TABLES_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "apq/v1/apq.pb.h"
#include "common/display.h"

namespace apq {

// "2026-12-02T11:40:00Z (12s ago)"; "never" for 0.
std::string TimeAndAge(int64_t unix_millis, absl::Time now);

// Where frames are raw offsets because a symbol table has not arrived: a
// line per table.
std::string SymbolsPending(const apq::v1::TopResponse& response);

// apq top: a heading (hosts, when, which pages), the unclassified
// remainder of a class view, and a row per group; `group_title` names the
// grouping (--by).
std::string FormatTopTable(const apq::v1::TopRequest& request, const apq::v1::TopResponse& response,
                           const std::string& group_title, const TableStyle& style);

// apq diff: a heading (each side's cohort), a row per group, bytes per
// host of each side.
std::string FormatDiffTable(const apq::v1::DiffRequest& request, const apq::v1::DiffResponse& response,
                            const std::string& group_title, const TableStyle& style);

// apq clusters.
std::string FormatClustersTable(const apq::v1::ClustersResponse& response, absl::Time now);

// apq hosts.
std::string FormatHostsTable(const apq::v1::HostsResponse& response, absl::Time now);

}  // namespace apq

#endif  // APQ_COMMON_TABLES_H_
