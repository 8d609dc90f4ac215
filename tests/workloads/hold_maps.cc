// apq-hold-maps: holds vmalloc'd kernel memory that the bulk page allocator
// fills: BPF array maps, whose storage comes from bpf_map_area_alloc ->
// __vmalloc_node_range -> vm_area_alloc_pages -> alloc_pages_bulk*.
// Prints "ready <pid>" once the maps exist, holds --hold-seconds, exits.
#include <bpf/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

int main(int argc, char** argv) {
  long maps = 32, entries = 500, value_size = 4096, hold_seconds = 3600;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    long value = std::strtol(argv[i + 1], nullptr, 10);
    if (flag == "--maps")
      maps = value;
    else if (flag == "--entries")
      entries = value;
    else if (flag == "--value-size")
      value_size = value;
    else if (flag == "--hold-seconds")
      hold_seconds = value;
    else {
      std::fprintf(stderr, "usage: apq-hold-maps [--maps N] [--entries E] [--value-size V] [--hold-seconds S]\n");
      return 2;
    }
  }
  for (long m = 0; m < maps; ++m) {
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "apq_hold", 4, static_cast<__u32>(value_size),
                            static_cast<__u32>(entries), nullptr);
    if (fd < 0) {
      std::fprintf(stderr, "apq-hold-maps: create array map: %s\n", std::strerror(errno));
      return 1;
    }
  }
  std::printf("ready %d\n", getpid());
  std::fflush(stdout);
  timespec remaining{hold_seconds, 0};
  while (nanosleep(&remaining, &remaining) != 0 && errno == EINTR) {
  }
  return 0;
}
