#include "common/log.h"

#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace apq {
namespace {

std::string& Program() {
  static std::string* const program = new std::string("apq");
  return *program;
}

}  // namespace

void SetLogProgram(const std::string& program) { Program() = program; }

LogLine::~LogLine() {
  const std::string line = absl::StrCat(Program(), ": ", text_.str(), "\n");
  // Whole, in one call where the kernel takes it: a line is not split by another thread's.
  for (size_t written = 0; written < line.size();) {
    const ssize_t n = write(STDERR_FILENO, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr closed: nothing else to tell
    written += static_cast<size_t>(n);
  }
}

}  // namespace apq
