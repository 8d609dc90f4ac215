#ifndef APQ_CLI_DIFF_SELECTOR_H_
#define APQ_CLI_DIFF_SELECTOR_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "apq/v1/apq.pb.h"

namespace apq {

// `apq diff --before/--after`: parts joined by commas, all of which must hold:
//   a time range FROM..TO or a time (meaning "at that time"), each RFC 3339
//   (2026-11-01T00:00Z, seconds optional) or a time ago (2h, 30m);
//   build=HEX (a prefix is enough), release=UNAME_R, host=NAME.
// No time part: the newest sample.
absl::StatusOr<apq::v1::DiffSelector> ParseDiffSelector(absl::string_view text, absl::Time now);

}  // namespace apq

#endif  // APQ_CLI_DIFF_SELECTOR_H_
