// How apq's daemons say they are ready, and on which ports: in a file
// (--ready-file PATH), and to systemd where it runs them (Type=notify).
// Tests and scripts wait for the file and read the ports from it instead
// of scraping log text.
#ifndef APQ_COMMON_READY_FILE_H_
#define APQ_COMMON_READY_FILE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace apq {

// What a daemon announces: name=value lines (grpc_port=7070).
using ReadyFacts = std::vector<std::pair<std::string, int64_t>>;

// The file's text: a line per fact, then "ready=1", the line readers wait for.
std::string ReadyText(const ReadyFacts& facts);
// A fact of a ready file's text; NotFound if absent, InvalidArgument if not a number.
absl::StatusOr<int64_t> ReadyFact(absl::string_view text, absl::string_view name);

// Writes the facts to `path` whole (a temporary file renamed into place: a
// reader sees all of it or none; no file when path is empty), and tells
// systemd READY=1 when NOTIFY_SOCKET is set.
absl::Status AnnounceReady(const std::string& path, const ReadyFacts& facts);

// --ready-file, the flag of both daemons.
std::string ReadyFileFromFlag();

}  // namespace apq

#endif  // APQ_COMMON_READY_FILE_H_
