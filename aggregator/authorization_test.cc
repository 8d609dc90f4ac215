// Mutual TLS decides who connects; the certificates' apq:// names decide
// what they may do: over real TLS on loopback, with certificates made by
// deploy/apq-certs, an agent certified for cluster prod cannot report as
// staging (or as another host), and a reader of prod cannot read staging.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "aggregator/fleet.h"
#include "aggregator/ingest_service.h"
#include "aggregator/query_service.h"
#include "common/transport.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

class AuthorizationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ =
        new std::filesystem::path(std::filesystem::path(::testing::TempDir()) / absl::StrCat("apq-authz-", getpid()));
    const std::string certs = absl::StrCat(APQ_SOURCE_DIR, "/deploy/apq-certs ");
    const std::string command =
        absl::StrCat("(", certs, "init ", dir_->string(), " && ", certs, "aggregator ", dir_->string(),
                     " localhost 127.0.0.1 && ", certs, "agent ", dir_->string(), " prod web-1 && ", certs, "reader ",
                     dir_->string(), " alice prod) > /dev/null");
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string File(const std::string& name) { return (*dir_ / name).string(); }

  void SetUp() override {
    db_ = *dir_ / absl::StrCat("apq-", ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".db");
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(db_.string());
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<std::unique_ptr<Fleet>> fleet = Fleet::Start(std::move(*store), 60'000, [] { return 1'000'000; });
    ASSERT_TRUE(fleet.ok()) << fleet.status();
    fleet_ = std::move(*fleet);
    ingest_ = std::make_unique<IngestService>(fleet_.get(), /*client_certificates=*/true, &rate_);
    query_ = std::make_unique<QueryService>(fleet_.get(), /*client_certificates=*/true);
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        ServerCredentialsFor({File("aggregator.crt"), File("aggregator.key"), File("ca.crt")});
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *credentials, &port_);
    builder.RegisterService(ingest_.get());
    builder.RegisterService(query_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  std::shared_ptr<grpc::Channel> ChannelAs(const std::string& holder) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        ChannelTo(absl::StrCat("127.0.0.1:", port_), {File("ca.crt"), File(holder + ".crt"), File(holder + ".key"), ""},
                  grpc::ChannelArguments());
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *channel : nullptr;
  }
  // The status of a stream whose hello names cluster and host; OK if acked.
  grpc::Status HelloAs(const std::string& holder, const std::string& cluster, const std::string& host) {
    auto stub = apq::v1::Ingest::NewStub(ChannelAs(holder));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = stub->Stream(&context);
    apq::v1::AgentMessage hello;
    hello.mutable_hello()->set_cluster(cluster);
    hello.mutable_hello()->set_host(host);
    hello.mutable_hello()->mutable_epoch()->set_boot_id("boot");
    apq::v1::AggregatorMessage reply;
    if (stream->Write(hello) && stream->Read(&reply) && reply.has_ack()) stream->WritesDone();
    return stream->Finish();
  }
  grpc::Status HostsAs(const std::string& holder, const std::string& cluster) {
    auto stub = apq::v1::Query::NewStub(ChannelAs(holder));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    apq::v1::HostsRequest request;
    request.set_cluster(cluster);
    apq::v1::HostsResponse response;
    return stub->Hosts(&context, request, &response);
  }
  grpc::Status TopAs(const std::string& holder, const std::string& cluster) {
    auto stub = apq::v1::Query::NewStub(ChannelAs(holder));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    apq::v1::TopRequest request;
    request.set_cluster(cluster);
    apq::v1::TopResponse response;
    return stub->Top(&context, request, &response);
  }

  static std::filesystem::path* dir_;
  std::filesystem::path db_;
  HostRateLimiter rate_{0, 0};
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<IngestService> ingest_;
  std::unique_ptr<QueryService> query_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};
std::filesystem::path* AuthorizationTest::dir_ = nullptr;

TEST_F(AuthorizationTest, AnAgentReportsOnlyAsItsCertificatesClusterAndHost) {
  EXPECT_TRUE(HelloAs("agent-prod-web-1", "prod", "web-1").ok());
  const grpc::Status other_cluster = HelloAs("agent-prod-web-1", "staging", "web-1");
  EXPECT_EQ(other_cluster.error_code(), grpc::StatusCode::PERMISSION_DENIED) << other_cluster.error_message();
  EXPECT_NE(other_cluster.error_message().find("report as prod/web-1"), std::string::npos)
      << other_cluster.error_message();
  EXPECT_EQ(HelloAs("agent-prod-web-1", "prod", "web-2").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(HelloAs("reader-alice", "prod", "web-1").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(fleet_->refusals().Of(Refusal::kReportNotGranted), 3u);
  EXPECT_EQ(fleet_->GetStats().hosts.size(), 1u) << "a refused hello leaves no host behind";
}

TEST_F(AuthorizationTest, AReaderReadsOnlyItsClusters) {
  EXPECT_TRUE(HostsAs("reader-alice", "prod").ok());
  EXPECT_TRUE(TopAs("reader-alice", "prod").ok());
  const grpc::Status other = HostsAs("reader-alice", "staging");
  EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(other.error_message().find("may not read cluster 'staging'"), std::string::npos) << other.error_message();
  EXPECT_EQ(TopAs("reader-alice", "staging").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(HostsAs("agent-prod-web-1", "prod").error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << "an agent's certificate reads nothing";
  EXPECT_EQ(fleet_->refusals().Of(Refusal::kReadNotGranted), 3u);
}

}  // namespace
}  // namespace apq
