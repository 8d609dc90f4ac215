#include "common/ready_file.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace apq {
namespace {

TEST(ReadyFileTest, FactsRoundTripAndReadyComesLast) {
  const std::string text = ReadyText({{"grpc_port", 7070}, {"http_port", 9470}});
  EXPECT_EQ(text, "grpc_port=7070\nhttp_port=9470\nready=1\n");
  EXPECT_EQ(*ReadyFact(text, "grpc_port"), 7070);
  EXPECT_EQ(*ReadyFact(text, "http_port"), 9470);
  EXPECT_EQ(ReadyFact(text, "metrics_port").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadyFact("grpc_port=x\n", "grpc_port").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadyFact("grpc_port_2=1\ngrpc_port=2\n", "grpc_port").value(), 2) << "whole names only";
}

TEST(ReadyFileTest, TheFileIsWrittenWholeAndSystemdIsTold) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / ("apq-ready-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  // systemd's end: a datagram socket named by NOTIFY_SOCKET.
  const std::string socket_path = (dir / "notify").string();
  const int listener = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(setenv("NOTIFY_SOCKET", socket_path.c_str(), 1), 0);

  const std::string path = (dir / "aggregator.ready").string();
  ASSERT_TRUE(AnnounceReady(path, {{"grpc_port", 41000}}).ok());
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  EXPECT_EQ(text.str(), "grpc_port=41000\nready=1\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  char datagram[64] = {};
  EXPECT_EQ(recv(listener, datagram, sizeof(datagram), MSG_DONTWAIT), 7);
  EXPECT_STREQ(datagram, "READY=1");

  unsetenv("NOTIFY_SOCKET");
  absl::Status unwritable = AnnounceReady((dir / "no-such-dir" / "x.ready").string(), {});
  EXPECT_FALSE(unwritable.ok());
  EXPECT_NE(unwritable.message().find("no-such-dir"), std::string::npos) << unwritable;
  close(listener);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace apq
