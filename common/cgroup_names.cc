#include "common/cgroup_names.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <vector>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/files.h"

namespace apq {
std::string Cgroup2MountFromMountinfo(absl::string_view mountinfo) {
  // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER"
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() >= 5 && dash != fields.end() && dash + 1 != fields.end() && dash[1] == "cgroup2") {
      return std::string(fields[4]);
    }
  }
  return "";
}

std::string MemoryCgroupMountFromMountinfo(absl::string_view mountinfo) {
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || fields.end() - dash < 4 || dash[1] != "cgroup") continue;
    std::vector<absl::string_view> options = absl::StrSplit(dash[3], ',');
    if (std::find(options.begin(), options.end(), "memory") != options.end()) return std::string(fields[4]);
  }
  return Cgroup2MountFromMountinfo(mountinfo);
}

CgroupNames CgroupNames::ForMemoryCgroups() {
  absl::StatusOr<std::string> mountinfo = ReadFileToString("/proc/self/mountinfo");
  return CgroupNames(mountinfo.ok() ? MemoryCgroupMountFromMountinfo(*mountinfo) : "");
}

CgroupNames::CgroupNames() {
  // Without mountinfo, cgroups are named by id.
  absl::StatusOr<std::string> mountinfo = ReadFileToString("/proc/self/mountinfo");
  if (mountinfo.ok()) mount_ = Cgroup2MountFromMountinfo(*mountinfo);
}

void CgroupNames::Scan() {
  namespace fs = std::filesystem;
  names_.clear();
  last_scan_ = std::chrono::steady_clock::now();
  if (mount_.empty()) return;
  std::error_code error;
  auto add = [&](const fs::path& dir, const std::string& name) {
    struct stat st{};
    if (::stat(dir.c_str(), &st) == 0) names_.emplace(static_cast<uint64_t>(st.st_ino), name);
  };
  add(mount_, "/");
  for (fs::recursive_directory_iterator it(mount_, fs::directory_options::skip_permission_denied, error), end;
       !error && it != end; it.increment(error)) {
    if (it->is_directory(error) && !it->is_symlink(error)) {
      add(it->path(), "/" + fs::relative(it->path(), mount_, error).string());
    }
  }
}

std::string CgroupNames::NameOf(uint64_t id) {
  auto found = names_.find(id);
  if (found == names_.end() &&
      (!last_scan_ || std::chrono::steady_clock::now() - *last_scan_ >= std::chrono::seconds(1))) {
    Scan();
    found = names_.find(id);
  }
  return found == names_.end() ? absl::StrCat("cgroup ", id) : found->second;
}

}  // namespace apq
