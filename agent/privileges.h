#ifndef APQ_AGENT_PRIVILEGES_H_
#define APQ_AGENT_PRIVILEGES_H_

#include "absl/status/status.h"

namespace apq {

// Whether this thread holds capability `cap` (CAP_* of linux/capability.h)
// in its effective set.
bool HasEffectiveCapability(int cap);

// Once its programs are attached, kallsyms read and the holders at start
// found, the agent needs one capability only: bpf(2) on the maps it holds
// asks for CAP_BPF (or CAP_SYS_ADMIN, for a process given that alone) on
// kernels before 6.5 with unprivileged BPF disabled. Everything else it
// reads is world-readable, or root-owned files it reads as their owner
// (uid 0). Reduces the permitted, effective and inheritable sets to that
// one (CAP_BPF where held); what is dropped cannot come back.
//
// capset(2) changes the calling thread alone, and threads inherit from the
// thread that makes them: call it while the process has one thread, before
// gRPC or an HTTP server starts theirs.
absl::Status DropCapabilitiesAfterStart();

}  // namespace apq

#endif  // APQ_AGENT_PRIVILEGES_H_
