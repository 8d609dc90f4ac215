#ifndef APQ_AGENT_PRIVILEGES_H_
#define APQ_AGENT_PRIVILEGES_H_

#include <linux/capability.h>

#include "absl/status/status.h"

namespace apq {

// Once its programs are attached, kallsyms read and the holders at start
// found, the agent needs no capability but CAP_BPF: on kernels before 6.5
// with unprivileged BPF disabled, every bpf(2) call (its map reads) asks for
// it. Everything else it reads is world-readable or root-owned files it
// reads as their owner (uid 0). What it drops cannot come back.
inline constexpr int kCapabilityKeptWhileRunning = CAP_BPF;

// Reduces this process's permitted, effective and inheritable sets to
// kCapabilityKeptWhileRunning (where it held it).
absl::Status DropCapabilitiesAfterStart();

}  // namespace apq

#endif  // APQ_AGENT_PRIVILEGES_H_
