#include "common/log.h"

#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

// stderr into a pipe while `log` runs; what was written.
template <typename Log>
std::string Captured(Log log) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const int saved = dup(STDERR_FILENO);
  dup2(fds[1], STDERR_FILENO);
  close(fds[1]);
  log();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof(buffer))) > 0;) out.append(buffer, static_cast<size_t>(n));
  close(fds[0]);
  return out;
}

TEST(LogTest, EachMessageIsOneWholePrefixedLine) {
  SetLogProgram("apq-test");
  const std::string out = Captured([] {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([t] {
        for (int i = 0; i < 50; ++i) APQ_LOG() << "thread " << t << " line " << i << " " << std::string(100, 'x');
      });
    }
    for (std::thread& thread : threads) thread.join();
  });
  const std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 200u);
  for (const std::string& line : lines) {
    EXPECT_EQ(line.rfind("apq-test: thread ", 0), 0u) << line;
    EXPECT_EQ(line.substr(line.size() - 100), std::string(100, 'x')) << line;
  }
}

}  // namespace
}  // namespace apq
