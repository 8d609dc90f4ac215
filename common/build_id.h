#ifndef APQ_COMMON_BUILD_ID_H_
#define APQ_COMMON_BUILD_ID_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace apq {

// The GNU build ID (NT_GNU_BUILD_ID) in a sequence of ELF notes, as found in
// /sys/kernel/notes and /sys/module/NAME/notes/.note.gnu.build-id. Bounds are
// checked on every note: malformed input yields nullopt, never a read past
// the end.
std::optional<std::string> GnuBuildIdFromNotes(absl::string_view notes);

// Reads a notes file and returns its build ID (NotFound if it has none).
absl::StatusOr<std::string> ReadGnuBuildId(const std::string& path);

// Lower-case hex of a binary build ID.
std::string HexBuildId(absl::string_view build_id);

}  // namespace apq

#endif  // APQ_COMMON_BUILD_ID_H_
