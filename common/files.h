#ifndef APQ_COMMON_FILES_H_
#define APQ_COMMON_FILES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace apq {

// The whole file (procfs and sysfs files included); an error names the path
// and errno.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Wall-clock milliseconds since the Unix epoch: the time reports carry.
int64_t UnixMillis();
// This host's name (gethostname); an error names why it could not be read.
absl::StatusOr<std::string> ThisHostName();

}  // namespace apq

#endif  // APQ_COMMON_FILES_H_
