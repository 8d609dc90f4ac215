#include "agent/privileges.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace apq {
namespace {

struct Capabilities {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
};

}  // namespace

bool HasEffectiveCapability(int cap) {
  Capabilities caps;
  if (syscall(SYS_capget, &caps.header, caps.data) != 0) return false;
  return (caps.data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

absl::Status DropCapabilitiesAfterStart() {
  const int kept = HasEffectiveCapability(CAP_BPF) ? CAP_BPF : CAP_SYS_ADMIN;
  Capabilities caps;
  if (syscall(SYS_capget, &caps.header, caps.data) != 0) {
    return absl::InternalError(absl::StrCat("capget: ", std::strerror(errno)));
  }
  for (int half = 0; half < _LINUX_CAPABILITY_U32S_3; ++half) {
    const __u32 bit = kept / 32 == half ? 1u << (kept % 32) : 0;
    caps.data[half].permitted &= bit;
    caps.data[half].effective &= bit;
    caps.data[half].inheritable = 0;
  }
  if (syscall(SYS_capset, &caps.header, caps.data) != 0) {
    return absl::InternalError(absl::StrCat("dropping capabilities (capset): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace apq
