#ifndef APQ_COMMON_FLAG_NAMES_H_
#define APQ_COMMON_FLAG_NAMES_H_

#include <string>
#include <vector>

namespace apq {

// Abseil flags are named with underscores; apq's command lines use dashes
// (--sample-bytes). Returns argv with '-' turned into '_' in each flag name
// (before any '='), leaving values and arguments after "--" alone.
std::vector<std::string> NormalizeFlagNames(int argc, char** argv);

// Runs absl::ParseCommandLine over the normalized arguments; returns the
// positional arguments (argv[0] first).
std::vector<std::string> ParseFlags(int argc, char** argv);

}  // namespace apq

#endif  // APQ_COMMON_FLAG_NAMES_H_
