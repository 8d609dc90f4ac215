// apq-test-proxy: a TCP proxy the fault tests control, standing between
// agents and the aggregator. Signals switch its mode:
//   SIGUSR1  drop:  every connection is reset and new ones are closed at once
//   SIGUSR2  stall: nothing is forwarded or accepted, connections stay open
//                   (a black hole: what a cut cable looks like to TCP)
//   SIGHUP   pass:  forwarding again
// Prints "proxy on port N" once listening.
//   apq-test-proxy --target HOST:PORT [--listen PORT]
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

enum Mode { kPass, kStall, kDrop };
volatile sig_atomic_t requested_mode = kPass;

struct Pair {
  int client = -1, server = -1;
};

int ConnectTo(const std::string& host, const std::string& port) {
  addrinfo hints{}, *found = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) return -1;
  int fd = socket(found->ai_family, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    close(fd);
    fd = -1;
  }
  freeaddrinfo(found);
  return fd;
}

// Resets a connection (SO_LINGER 0: RST, not FIN), as a dropped link does.
void Reset(int fd) {
  linger hard{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  close(fd);
}

// Moves what `from` has to `to`; false when either side is done.
bool Forward(int from, int to) {
  char buffer[1 << 16];
  ssize_t got = read(from, buffer, sizeof(buffer));
  if (got <= 0) return false;
  for (ssize_t sent = 0; sent < got;) {
    ssize_t n = write(to, buffer + sent, static_cast<size_t>(got - sent));
    if (n <= 0) return false;
    sent += n;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string target;
  int listen_port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--target") == 0)
      target = argv[i + 1];
    else if (std::strcmp(argv[i], "--listen") == 0)
      listen_port = std::atoi(argv[i + 1]);
  }
  const size_t colon = target.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "usage: apq-test-proxy --target HOST:PORT [--listen PORT]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGUSR1, [](int) { requested_mode = kDrop; });
  signal(SIGUSR2, [](int) { requested_mode = kStall; });
  signal(SIGHUP, [](int) { requested_mode = kPass; });
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(listen_port));
  socklen_t length = sizeof(address);
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || listen(listener, 128) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    std::perror("apq-test-proxy: listen");
    return 1;
  }
  std::printf("proxy on port %d\n", ntohs(address.sin_port));
  std::fflush(stdout);
  std::vector<Pair> pairs;
  while (true) {
    const Mode mode = static_cast<Mode>(requested_mode);
    if (mode == kDrop) {
      for (const Pair& pair : pairs) {
        Reset(pair.client);
        Reset(pair.server);
      }
      pairs.clear();
    }
    std::vector<pollfd> polled;
    if (mode != kStall) polled.push_back({listener, POLLIN, 0});
    if (mode == kPass) {
      for (const Pair& pair : pairs) {
        polled.push_back({pair.client, POLLIN, 0});
        polled.push_back({pair.server, POLLIN, 0});
      }
    }
    if (poll(polled.data(), polled.size(), 100) < 0 && errno != EINTR) return 1;
    if (mode != kStall && (polled[0].revents & POLLIN)) {
      int client = accept(listener, nullptr, nullptr);
      if (client >= 0 && mode == kDrop) {
        Reset(client);
      } else if (client >= 0) {
        int server = ConnectTo(target.substr(0, colon), target.substr(colon + 1));
        if (server < 0) {
          Reset(client);
        } else {
          pairs.push_back({client, server});
        }
      }
    }
    if (mode != kPass) continue;
    std::vector<Pair> alive;
    for (size_t i = 0; i < pairs.size(); ++i) {
      const pollfd& client = polled[1 + 2 * i];
      const pollfd& server = polled[2 + 2 * i];
      bool open = true;
      if (client.revents & (POLLIN | POLLHUP | POLLERR)) open = Forward(pairs[i].client, pairs[i].server);
      if (open && (server.revents & (POLLIN | POLLHUP | POLLERR))) open = Forward(pairs[i].server, pairs[i].client);
      if (open) {
        alive.push_back(pairs[i]);
      } else {
        close(pairs[i].client);
        close(pairs[i].server);
      }
    }
    pairs = std::move(alive);
  }
}
