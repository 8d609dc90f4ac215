// apq-hold-sockets: holds hidden kernel memory in socket buffers: N TCP
// connections over loopback, each sent --bytes (or until the connection
// takes no more) and never read, so the data waits in the receive and send
// queues, in page frags the sender took. Prints "ready <pid> <bytes sent>"
// once everything is held, holds --hold-seconds, exits.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "apq-hold-sockets: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  long connections = 8, bytes = 1 << 20, hold_seconds = 3600;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    long value = std::strtol(argv[i + 1], nullptr, 10);
    if (flag == "--connections")
      connections = value;
    else if (flag == "--bytes")
      bytes = value;
    else if (flag == "--hold-seconds")
      hold_seconds = value;
    else {
      std::fprintf(stderr, "usage: apq-hold-sockets [--connections N] [--bytes B] [--hold-seconds S]\n");
      return 2;
    }
  }
  rlimit limit{static_cast<rlim_t>(2 * connections + 64), static_cast<rlim_t>(2 * connections + 64)};
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) Die("raise RLIMIT_NOFILE");
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(listener, static_cast<int>(connections)) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    Die("listen on loopback");
  }
  std::vector<char> chunk(64 * 1024, 'x');
  std::vector<int> fds;
  long long sent = 0;
  for (long c = 0; c < connections; ++c) {
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client < 0 || connect(client, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) Die("connect");
    int server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (server < 0) Die("accept");
    fcntl(client, F_SETFL, O_NONBLOCK);
    for (long done = 0; done < bytes;) {
      ssize_t w = write(client, chunk.data(), static_cast<size_t>(std::min<long>(bytes - done, chunk.size())));
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;  // the connection holds no more
      if (w <= 0) Die("write");
      done += w;
      sent += w;
    }
    fds.push_back(client);
    fds.push_back(server);
  }
  std::printf("ready %d %lld\n", getpid(), sent);
  std::fflush(stdout);
  timespec remaining{hold_seconds, 0};
  while (nanosleep(&remaining, &remaining) != 0 && errno == EINTR) {
  }
  return 0;
}
