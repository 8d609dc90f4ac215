// apq-hold-pipes: holds a known amount of hidden kernel memory in pipe
// buffers, the ground truth of apq's tests and benchmarks.
//
// Each pipe is resized to --pipe-bytes (one order-2 ring allocation from
// pipe_resize_ring for 1 MiB pipes) and filled with exactly that many bytes
// in page-multiple writes (--fill-bytes, default all of it), so it holds
// fill-bytes/4096 pages from the pipe write path. Empty pipes (--fill-bytes
// 0) hold only their rings: one allocation of a known order each. Prints "ready <pid>" once everything is held, then
// holds until
// --hold-seconds pass (or SIGTERM), and exits, which frees it all.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "apq-hold-pipes: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

long ParseArg(const char* flag, const char* value) {
  char* end = nullptr;
  long v = std::strtol(value, &end, 10);
  if (!*value || *end || v < 0) {
    std::fprintf(stderr, "apq-hold-pipes: %s wants a non-negative integer, not '%s'\n", flag, value);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  long pipes = 16, pipe_bytes = 1 << 20, fill_bytes = -1, hold_seconds = 3600;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--pipes")
      pipes = ParseArg(argv[i], argv[i + 1]);
    else if (flag == "--pipe-bytes")
      pipe_bytes = ParseArg(argv[i], argv[i + 1]);
    else if (flag == "--fill-bytes")
      fill_bytes = ParseArg(argv[i], argv[i + 1]);
    else if (flag == "--hold-seconds")
      hold_seconds = ParseArg(argv[i], argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: apq-hold-pipes [--pipes N] [--pipe-bytes B] [--fill-bytes B] [--hold-seconds S]\n");
      return 2;
    }
  }
  if (fill_bytes < 0) fill_bytes = pipe_bytes;
  if (argc % 2 == 0 || pipe_bytes % 4096 != 0 || pipe_bytes == 0 || fill_bytes % 4096 != 0 || fill_bytes > pipe_bytes) {
    std::fprintf(stderr,
                 "apq-hold-pipes: --pipe-bytes must be a positive multiple of 4096, --fill-bytes one up to it\n");
    return 2;
  }
  rlimit limit{static_cast<rlim_t>(2 * pipes + 64), static_cast<rlim_t>(2 * pipes + 64)};
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) Die("raise RLIMIT_NOFILE");

  std::vector<char> chunk(64 * 1024, 'x');
  std::vector<int> fds;
  for (long p = 0; p < pipes; ++p) {
    int fd[2];
    if (pipe2(fd, O_NONBLOCK | O_CLOEXEC) != 0) Die("pipe2");
    if (fcntl(fd[1], F_SETPIPE_SZ, static_cast<int>(pipe_bytes)) < pipe_bytes) Die("F_SETPIPE_SZ");
    for (long written = 0; written < fill_bytes;) {
      size_t n = static_cast<size_t>(std::min<long>(fill_bytes - written, static_cast<long>(chunk.size())));
      ssize_t w = write(fd[1], chunk.data(), n);
      if (w <= 0 || w % 4096 != 0) Die("fill pipe");
      written += w;
    }
    fds.push_back(fd[0]);
    fds.push_back(fd[1]);
  }
  std::printf("ready %d\n", getpid());
  std::fflush(stdout);
  timespec remaining{hold_seconds, 0};
  while (nanosleep(&remaining, &remaining) != 0 && errno == EINTR) {
  }
  return 0;
}
