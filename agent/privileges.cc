#include "agent/privileges.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace apq {
namespace {

uint64_t Joined(__u32 low, __u32 high) { return (uint64_t{high} << 32) | low; }

}  // namespace

absl::Status DropCapabilitiesAfterStart() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) {
    return absl::InternalError(absl::StrCat("capget: ", std::strerror(errno)));
  }
  const uint64_t kept = uint64_t{1} << kCapabilityKeptWhileRunning;
  const uint64_t permitted = Joined(data[0].permitted, data[1].permitted) & kept;
  const uint64_t effective = Joined(data[0].effective, data[1].effective) & kept;
  for (int half = 0; half < 2; ++half) {
    data[half].permitted = static_cast<__u32>(permitted >> (32 * half));
    data[half].effective = static_cast<__u32>(effective >> (32 * half));
    data[half].inheritable = 0;
  }
  if (syscall(SYS_capset, &header, data) != 0) {
    return absl::InternalError(absl::StrCat("dropping capabilities (capset): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace apq
