#include "common/build_id.h"

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace apq {
namespace {

constexpr uint32_t kNtGnuBuildId = 3;

uint32_t ReadU32(absl::string_view data, size_t at) {
  uint32_t value;
  std::memcpy(&value, data.data() + at, sizeof(value));
  return value;
}

size_t Align4(size_t n) { return (n + 3) & ~size_t{3}; }

}  // namespace

std::optional<std::string> GnuBuildIdFromNotes(absl::string_view notes) {
  size_t at = 0;
  while (at + 12 <= notes.size()) {
    uint64_t name_size = ReadU32(notes, at), desc_size = ReadU32(notes, at + 4);
    uint32_t type = ReadU32(notes, at + 8);
    size_t name_at = at + 12;
    uint64_t desc_at = name_at + Align4(name_size);
    uint64_t next = desc_at + Align4(desc_size);
    if (desc_at > notes.size() || next > notes.size() + 3 || desc_at + desc_size > notes.size()) return std::nullopt;
    if (type == kNtGnuBuildId && name_size == 4 && notes.substr(name_at, 4) == absl::string_view("GNU\0", 4) &&
        desc_size > 0) {
      return std::string(notes.substr(desc_at, desc_size));
    }
    at = next;
  }
  return std::nullopt;
}

absl::StatusOr<std::string> ReadGnuBuildId(const std::string& path) {
  absl::StatusOr<std::string> notes = ReadFileToString(path);
  if (!notes.ok()) return notes.status();
  std::optional<std::string> id = GnuBuildIdFromNotes(*notes);
  if (!id) return absl::NotFoundError(absl::StrCat(path, " has no GNU build ID note"));
  return *id;
}

std::string HexBuildId(absl::string_view build_id) { return absl::BytesToHexString(build_id); }

}  // namespace apq
