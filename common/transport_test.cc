#include "common/transport.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "apq/v1/apq.grpc.pb.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

// Answers every Hosts call with one host, so a call that gets through is seen.
class OneHostQuery final : public apq::v1::Query::Service {
  grpc::Status Hosts(grpc::ServerContext*, const apq::v1::HostsRequest*, apq::v1::HostsResponse* response) override {
    response->add_hosts()->set_host("reached");
    return grpc::Status::OK;
  }
};

class TransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ =
        new std::filesystem::path(std::filesystem::path(::testing::TempDir()) / absl::StrCat("apq-certs-", getpid()));
    // The fleet's CA with an aggregator for localhost and 127.0.0.1 and an
    // agent; and a rogue CA, unrelated, with an agent of its own.
    const std::string certs = absl::StrCat(APQ_SOURCE_DIR, "/deploy/apq-certs ");
    const std::string fleet = dir_->string(), rogue = (*dir_ / "rogue").string();
    const std::string command = absl::StrCat(
        "(", certs, "init ", fleet, " && ", certs, "aggregator ", fleet, " localhost 127.0.0.1 && ", certs, "agent ",
        fleet, " prod web-1 && ", certs, "init ", rogue, " && ", certs, "agent ", rogue, " prod web-1) > /dev/null");
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string File(const std::string& name) { return (*dir_ / name).string(); }

  // A server on a free loopback port with these credentials; sets port_.
  std::unique_ptr<grpc::Server> Serve(const ServerTls& tls) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = ServerCredentialsFor(tls);
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    if (!credentials.ok()) return nullptr;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *credentials, &port_);
    builder.RegisterService(&service_);
    return builder.BuildAndStart();
  }
  // Whether a Hosts call with these client settings reaches the server.
  bool Reaches(const ClientTls& tls, const std::string& host = "127.0.0.1") {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        ChannelTo(absl::StrCat(host, ":", port_), tls, grpc::ChannelArguments());
    EXPECT_TRUE(channel.ok()) << channel.status();
    if (!channel.ok()) return false;
    auto stub = apq::v1::Query::NewStub(*channel);
    grpc::ClientContext context;
    // Refusals come at once; an admitted handshake may be slow on a loaded machine.
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    apq::v1::HostsResponse response;
    grpc::Status status = stub->Hosts(&context, apq::v1::HostsRequest(), &response);
    return status.ok() && response.hosts_size() == 1;
  }

  static std::filesystem::path* dir_;
  OneHostQuery service_;
  int port_ = 0;
};
std::filesystem::path* TransportTest::dir_ = nullptr;

TEST_F(TransportTest, MutualTlsAdmitsOnlyClientsOfItsCa) {
  std::unique_ptr<grpc::Server> server = Serve({File("aggregator.crt"), File("aggregator.key"), File("ca.crt")});
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(Reaches({File("ca.crt"), File("agent-prod-web-1.crt"), File("agent-prod-web-1.key"), ""}));
  EXPECT_TRUE(Reaches({File("ca.crt"), File("agent-prod-web-1.crt"), File("agent-prod-web-1.key"), ""}, "localhost"));
  EXPECT_FALSE(Reaches({File("ca.crt"), "", "", ""})) << "no client certificate";
  EXPECT_FALSE(Reaches({File("ca.crt"), File("rogue/agent-prod-web-1.crt"), File("rogue/agent-prod-web-1.key"), ""}))
      << "client certificate of another CA";
  EXPECT_FALSE(Reaches({})) << "plaintext";
  EXPECT_FALSE(Reaches({File("rogue/ca.crt"), File("agent-prod-web-1.crt"), File("agent-prod-web-1.key"), ""}))
      << "server not signed by the CA the client trusts";
  EXPECT_FALSE(
      Reaches({File("ca.crt"), File("agent-prod-web-1.crt"), File("agent-prod-web-1.key"), "aggregator.example"}))
      << "server certificate for another name";
  server->Shutdown();
}

TEST_F(TransportTest, ServerTlsWithoutClientCaAdmitsAnyTlsClient) {
  std::unique_ptr<grpc::Server> server = Serve({File("aggregator.crt"), File("aggregator.key"), ""});
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(Reaches({File("ca.crt"), "", "", ""}));
  EXPECT_FALSE(Reaches({})) << "plaintext";
  server->Shutdown();
}

TEST_F(TransportTest, PlaintextServerRefusesTls) {
  std::unique_ptr<grpc::Server> server = Serve({});
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(Reaches({}));
  EXPECT_FALSE(Reaches({File("ca.crt"), "", "", ""}));
  server->Shutdown();
}

TEST_F(TransportTest, BadSettingsAreOneLineErrorsNamingTheFlag) {
  auto expect_error = [](const absl::Status& status, const std::string& text) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(status.message().find(text), std::string::npos) << status;
    EXPECT_EQ(std::string(status.message()).find('\n'), std::string::npos) << status;
  };
  expect_error(ServerCredentialsFor({File("aggregator.crt"), "", ""}).status(), "--tls-cert and --tls-key");
  expect_error(ServerCredentialsFor({"", "", File("ca.crt")}).status(), "--tls-client-ca needs");
  expect_error(ServerCredentialsFor({"/nonexistent.pem", File("aggregator.key"), ""}).status(), "/nonexistent.pem");
  std::ofstream(File("garbage.pem")) << "not a certificate";
  expect_error(ServerCredentialsFor({File("garbage.pem"), File("aggregator.key"), ""}).status(), "not a PEM file");
  grpc::ChannelArguments arguments;
  expect_error(ChannelTo("127.0.0.1:1", {"", File("agent-prod-web-1.crt"), File("agent-prod-web-1.key"), ""}, arguments)
                   .status(),
               "needs --tls-ca");
  expect_error(ChannelTo("127.0.0.1:1", {File("ca.crt"), "", File("agent-prod-web-1.key"), ""}, arguments).status(),
               "--tls-cert and --tls-key");
  expect_error(ChannelTo("127.0.0.1:1", {"/nonexistent/ca.pem", "", "", ""}, arguments).status(), "--tls-ca");
}

TEST(LoopbackTest, NamesThisMachineOnly) {
  EXPECT_TRUE(IsLoopback("127.0.0.1:7070"));
  EXPECT_TRUE(IsLoopback("localhost:7070"));
  EXPECT_TRUE(IsLoopback("[::1]:7070"));
  EXPECT_FALSE(IsLoopback("0.0.0.0:7070"));
  EXPECT_FALSE(IsLoopback("[::]:7070"));
  EXPECT_FALSE(IsLoopback("10.0.0.1:7070"));
  EXPECT_FALSE(IsLoopback("127.example.com:7070"));
}

}  // namespace
}  // namespace apq
