#ifndef APQ_COMMON_WIRE_LIMITS_H_
#define APQ_COMMON_WIRE_LIMITS_H_

// Limits both ends of apq's gRPC connections must agree on.

namespace apq {

// The largest message either side sends or accepts: a kernel's symbol table
// is a few MiB, a full snapshot of a busy host some more. It is also the
// burst a host may send at once above its rate limit (a catch-up after a
// partition), so a message that fits is never refused for its size alone.
inline constexpr int kMaxMessageBytes = 64 << 20;

// An agent pings its aggregator this often when the stream is quiet, and
// drops a connection that leaves a ping unanswered as long: a partition that
// silently swallows packets (no reset) ends the stream in seconds, not after
// TCP's retransmissions give up (15 minutes). The aggregator accepts pings
// twice as often.
inline constexpr int kKeepaliveMillis = 10'000;

}  // namespace apq

#endif  // APQ_COMMON_WIRE_LIMITS_H_
