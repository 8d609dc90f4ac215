// apq's questions to the aggregator, built from their parameters by name:
// apq's flags (cli/commands.cc) and the web API's query parameters
// (aggregator/query_web.cc) go through these same functions, so that a
// question means the same asked either way.
#ifndef APQ_COMMON_REQUESTS_H_
#define APQ_COMMON_REQUESTS_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "apq/v1/apq.pb.h"

namespace apq {

// Parameters by flag name without dashes (cluster, by, class, top, host,
// build, frame, pid, processes, at, since, before, after); absent or empty:
// not given.
using RequestParams = absl::flat_hash_map<std::string, std::string>;

// The largest --top / top= accepted.
inline constexpr uint32_t kMaxTopEntries = 1'000'000;

// `apq diff --before/--after`: parts joined by commas, all of which must hold:
//   a time range FROM..TO or a time (meaning "at that time"), each RFC 3339
//   (2026-11-01T00:00Z, seconds optional) or a time ago (2h, 30m);
//   build=HEX (a prefix is enough), release=UNAME_R, host=NAME.
// No time part: the newest sample.
absl::StatusOr<apq::v1::DiffSelector> ParseDiffSelector(absl::string_view text, absl::Time now);

// apq top: by (stack), class (hidden now, all with at or since), top (20),
// host, build (hex), frame, pid, processes (true or false: name each
// entry's processes), at and since (RFC 3339 or a time ago).
absl::StatusOr<apq::v1::TopRequest> TopRequestOf(const RequestParams& params, absl::Time now);
// apq explain: host, by (host: one explanation per host), top (20).
absl::StatusOr<apq::v1::ExplainRequest> ExplainRequestOf(const RequestParams& params);
// apq diff: before (needed) and after (default: the newest sample), as
// ParseDiffSelector reads them; by (stack), top (20).
absl::StatusOr<apq::v1::DiffRequest> DiffRequestOf(const RequestParams& params, absl::Time now);

}  // namespace apq

#endif  // APQ_COMMON_REQUESTS_H_
