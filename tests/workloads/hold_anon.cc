// apq-hold-anon: holds --mib MiB of anonymous memory scattered over twice
// that range (every other 64 KiB freed again), so that compaction has pages
// to migrate. Prints "ready <pid>", holds --hold-seconds, exits.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

int main(int argc, char** argv) {
  long mib = 64, hold_seconds = 3600;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    long value = std::strtol(argv[i + 1], nullptr, 10);
    if (flag == "--mib")
      mib = value;
    else if (flag == "--hold-seconds")
      hold_seconds = value;
    else {
      std::fprintf(stderr, "usage: apq-hold-anon [--mib M] [--hold-seconds S]\n");
      return 2;
    }
  }
  constexpr size_t kChunk = 64 << 10;
  size_t span = static_cast<size_t>(mib) << 21;  // twice the held size
  auto* base = static_cast<char*>(mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (base == MAP_FAILED) {
    std::perror("apq-hold-anon: mmap");
    return 1;
  }
  madvise(base, span, MADV_NOHUGEPAGE);
  for (size_t off = 0; off < span; off += 4096) base[off] = 1;
  for (size_t off = kChunk; off < span; off += 2 * kChunk) madvise(base + off, kChunk, MADV_DONTNEED);
  std::printf("ready %d\n", getpid());
  std::fflush(stdout);
  timespec remaining{hold_seconds, 0};
  while (nanosleep(&remaining, &remaining) != 0 && errno == EINTR) {
  }
  return 0;
}
