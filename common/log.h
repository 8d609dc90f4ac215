// The daemons' log: one line to stderr per message, "PROGRAM: text",
// written whole (threads never interleave within a line). A stand-in for
// absl/log, which Debian's Abseil (20220623) does not have yet; every
// diagnostic line goes through here, so that moving to it is one change.
#ifndef APQ_COMMON_LOG_H_
#define APQ_COMMON_LOG_H_

#include <sstream>
#include <string>

namespace apq {

// The prefix of every line ("apq-agent"); set once by main.
void SetLogProgram(const std::string& program);

class LogLine {
 public:
  LogLine() = default;
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  ~LogLine();
  template <typename T>
  LogLine& operator<<(const T& value) {
    text_ << value;
    return *this;
  }

 private:
  std::ostringstream text_;
};

}  // namespace apq

// APQ_LOG() << "connected to " << address;
#define APQ_LOG() ::apq::LogLine()

#endif  // APQ_COMMON_LOG_H_
