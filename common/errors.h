#ifndef APQ_COMMON_ERRORS_H_
#define APQ_COMMON_ERRORS_H_

#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace apq {

// Turns an errno value (positive or negative, as libbpf returns them) into a
// status whose message names what was being done: "<what>: <strerror>".
absl::Status ErrnoStatus(int err, absl::string_view what);

}  // namespace apq

#endif  // APQ_COMMON_ERRORS_H_
