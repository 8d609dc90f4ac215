#ifndef APQ_COMMON_FLAG_NAMES_H_
#define APQ_COMMON_FLAG_NAMES_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace apq {

// Abseil flags are named with underscores; apq's command lines use dashes
// (--sample-bytes). Returns argv with '-' turned into '_' in each flag name
// (before any '='), leaving values and arguments after "--" alone.
std::vector<std::string> NormalizeFlagNames(int argc, char** argv);

// Abseil follows the --flagfile lines inside flag files without end when a
// file includes itself, growing until memory runs out. Walks the files the
// arguments name (through read: a path's contents) before abseil does:
// InvalidArgument naming the cycle, or a nesting deeper than 16 files, more
// than 256 files read, or a file over 1 MiB.
using ReadFlagFile = std::function<absl::StatusOr<std::string>(const std::string& path)>;
absl::Status CheckFlagFiles(const std::vector<std::string>& args, const ReadFlagFile& read);

// Runs absl::ParseCommandLine over the normalized arguments; returns the
// positional arguments (argv[0] first).
std::vector<std::string> ParseFlags(int argc, char** argv);

}  // namespace apq

#endif  // APQ_COMMON_FLAG_NAMES_H_
