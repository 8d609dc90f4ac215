#ifndef APQ_AGENT_STOP_SIGNALS_H_
#define APQ_AGENT_STOP_SIGNALS_H_

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cmath>

namespace apq {

// SIGINT and SIGTERM end the run through a signalfd, so the final report is
// printed from normal control flow.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&mask_);
    sigaddset(&mask_, SIGINT);
    sigaddset(&mask_, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask_, &old_mask_);
    fd_ = signalfd(-1, &mask_, SFD_CLOEXEC | SFD_NONBLOCK);
  }
  ~StopSignals() {
    if (fd_ >= 0) close(fd_);
    sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  // Waits up to seconds; false when a stop signal arrived. The signal is
  // read off the signalfd: left pending, it would be delivered (and kill the
  // process) when the destructor unblocks it, after the final report.
  bool Sleep(double seconds) {
    pollfd p{fd_, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(std::lround(seconds * 1000)));
    if (!(rc > 0 && (p.revents & POLLIN))) return true;
    signalfd_siginfo info{};
    while (read(fd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
    }
    return false;
  }

 private:
  sigset_t mask_{}, old_mask_{};
  int fd_ = -1;
};

}  // namespace apq

#endif  // APQ_AGENT_STOP_SIGNALS_H_
