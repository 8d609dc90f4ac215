// apq-churn: page-allocator churn for the overhead benchmark. Prints the
// seconds the work took.
//   --pipe BYTES   push BYTES through one pipe in 64 KiB writes (a reader
//                  thread drains it): every 64 KiB allocates and frees 16 pages
//   --fault BYTES  mmap anonymous memory, touch every page, munmap, in 64 MiB
//                  steps until BYTES were faulted in
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

void PipeChurn(long long bytes) {
  int fd[2];
  if (pipe(fd) != 0) {
    std::perror("apq-churn: pipe");
    std::exit(1);
  }
  std::thread reader([&] {
    std::vector<char> buf(64 * 1024);
    while (read(fd[0], buf.data(), buf.size()) > 0) {
    }
  });
  std::vector<char> chunk(64 * 1024, 'x');
  for (long long done = 0; done < bytes;) {
    ssize_t w = write(fd[1], chunk.data(), chunk.size());
    if (w <= 0) {
      std::perror("apq-churn: write");
      std::exit(1);
    }
    done += w;
  }
  close(fd[1]);
  reader.join();
  close(fd[0]);
}

void FaultChurn(long long bytes) {
  constexpr size_t kStep = 64 << 20;
  for (long long done = 0; done < bytes; done += kStep) {
    void* p = mmap(nullptr, kStep, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("apq-churn: mmap");
      std::exit(1);
    }
    madvise(p, kStep, MADV_NOHUGEPAGE);  // one page-allocator call per 4 KiB page
    for (size_t off = 0; off < kStep; off += 4096) static_cast<volatile char*>(p)[off] = 1;
    munmap(p, kStep);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[1], "--pipe") != 0 && std::strcmp(argv[1], "--fault") != 0)) {
    std::fprintf(stderr, "usage: apq-churn --pipe BYTES | --fault BYTES\n");
    return 2;
  }
  char* end = nullptr;
  long long bytes = std::strtoll(argv[2], &end, 10);
  if (*end || bytes <= 0) {
    std::fprintf(stderr, "apq-churn: BYTES must be a positive integer\n");
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  if (argv[1][2] == 'p')
    PipeChurn(bytes);
  else
    FaultChurn(bytes);
  std::printf("%.6f\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}
