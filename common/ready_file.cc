#include "common/ready_file.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/errors.h"

ABSL_FLAG(std::string, ready_file, "",
          "Once serving, write PATH: a name=value line per port bound (grpc_port, http_port, metrics_port), then "
          "ready=1 (written whole). Under systemd (Type=notify) readiness is also sent to NOTIFY_SOCKET.");

namespace apq {
namespace {

// sd_notify(3)'s protocol: one datagram to the socket systemd names.
absl::Status NotifySystemd() {
  const char* socket_path = std::getenv("NOTIFY_SOCKET");
  if (socket_path == nullptr || socket_path[0] == '\0') return absl::OkStatus();
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const size_t length = std::strlen(socket_path);
  if (length >= sizeof(address.sun_path)) return absl::InvalidArgumentError("NOTIFY_SOCKET is too long");
  std::memcpy(address.sun_path, socket_path, length);
  if (address.sun_path[0] == '@') address.sun_path[0] = '\0';  // an abstract socket
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket for NOTIFY_SOCKET");
  static constexpr char kReady[] = "READY=1";
  const ssize_t sent = sendto(fd, kReady, sizeof(kReady) - 1, 0, reinterpret_cast<sockaddr*>(&address),
                              static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length));
  const int error = errno;
  close(fd);
  if (sent < 0) return ErrnoStatus(error, absl::StrCat("notify systemd at ", socket_path));
  return absl::OkStatus();
}

}  // namespace

std::string ReadyText(const ReadyFacts& facts) {
  std::string text;
  for (const auto& [name, value] : facts) absl::StrAppend(&text, name, "=", value, "\n");
  return text + "ready=1\n";
}

absl::StatusOr<int64_t> ReadyFact(absl::string_view text, absl::string_view name) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> fact = absl::StrSplit(line, absl::MaxSplits('=', 1));
    if (fact.first != name) continue;
    int64_t value = 0;
    if (!absl::SimpleAtoi(fact.second, &value)) {
      return absl::InvalidArgumentError(absl::StrCat("ready file: ", name, " is not a number: '", fact.second, "'"));
    }
    return value;
  }
  return absl::NotFoundError(absl::StrCat("ready file: no ", name));
}

absl::Status AnnounceReady(const std::string& path, const ReadyFacts& facts) {
  if (!path.empty()) {
    const std::string temporary = absl::StrCat(path, ".tmp");
    std::FILE* file = std::fopen(temporary.c_str(), "we");
    if (file == nullptr) return ErrnoStatus(errno, absl::StrCat("create ", temporary));
    const std::string text = ReadyText(facts);
    const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
    const int error = errno;
    if (std::fclose(file) != 0 || !written)
      return ErrnoStatus(written ? errno : error, absl::StrCat("write ", temporary));
    if (std::rename(temporary.c_str(), path.c_str()) != 0) return ErrnoStatus(errno, absl::StrCat("rename to ", path));
  }
  return NotifySystemd();
}

std::string ReadyFileFromFlag() { return absl::GetFlag(FLAGS_ready_file); }

}  // namespace apq
