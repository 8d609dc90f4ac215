#ifndef APQ_COMMON_EXPLANATION_H_
#define APQ_COMMON_EXPLANATION_H_

#include <string>

#include "apq/v1/apq.pb.h"
#include "nlohmann/json.hpp"
#include "common/meminfo_balance.h"

namespace apq {

// `apq explain`, local and fleet: /proc/meminfo reconciled,
//   MemTotal = MemFree + visible fields + hidden traced (by path) + hidden not traced,
// as one apq.v1.Explanation, whoever computed it.

// The equation's terms of one host (paths and mode left to the caller).
apq::v1::Explanation ExplanationOf(const MeminfoBalance& balance);

// Adds one host's terms to a sum over hosts: every term is a sum of pages,
// so the sum of the hosts' equations is the fleet's. Paths are not touched
// (the caller merges them by path); hosts, the oldest classification and
// the holders at start (named by host) are.
void AddTerms(const apq::v1::Explanation& host, apq::v1::Explanation* sum);

// Table for people (json is the message itself, common/proto_json.h).
std::string FormatExplanationTable(const apq::v1::Explanation& explanation);
// "pid 42 writer (host h): pipe buffers 16.0 MiB in 16", and its json object.
std::string DescribeStartHolder(const apq::v1::StartHolder& holder);
nlohmann::json StartHolderJson(const apq::v1::StartHolder& holder);

}  // namespace apq

#endif  // APQ_COMMON_EXPLANATION_H_
