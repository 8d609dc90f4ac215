#include "agent/stop_signals.h"

#include <signal.h>

#include "gtest/gtest.h"

namespace apq {
namespace {

// A stop signal ends the wait and is consumed: the process survives the
// StopSignals that caught it (a signal left pending would be delivered,
// with its default action, when the destructor unblocks it).
TEST(StopSignalsTest, StopSignalEndsTheWaitAndIsConsumed) {
  for (int sig : {SIGTERM, SIGINT}) {
    {
      StopSignals signals;
      EXPECT_TRUE(signals.Sleep(0.01));
      ASSERT_EQ(raise(sig), 0);
      EXPECT_FALSE(signals.Sleep(5));
    }
    sigset_t pending;
    sigpending(&pending);
    EXPECT_FALSE(sigismember(&pending, sig)) << sig;
  }
}

}  // namespace
}  // namespace apq
