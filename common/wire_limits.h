#ifndef APQ_COMMON_WIRE_LIMITS_H_
#define APQ_COMMON_WIRE_LIMITS_H_

// Limits both ends of apq's gRPC connections must agree on.

namespace apq {

// The largest message either side sends or accepts: a kernel's symbol table
// is a few MiB, a full snapshot of a busy host some more. It is also the
// burst a host may send at once above its rate limit (a catch-up after a
// partition), so a message that fits is never refused for its size alone.
inline constexpr int kMaxMessageBytes = 64 << 20;

}  // namespace apq

#endif  // APQ_COMMON_WIRE_LIMITS_H_
