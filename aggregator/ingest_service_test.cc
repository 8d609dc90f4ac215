// The ingest service over real gRPC on loopback: acks follow commits in
// order, hostile streams are refused, and streams that vanish at any point
// leave the aggregator serving.
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "aggregator/fleet.h"
#include "aggregator/ingest_service.h"
#include "aggregator/testing_fakes.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

class IngestServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::path(::testing::TempDir()) / ("apq-ingest-" + std::to_string(getpid()) + ".db");
    Remove();
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_.string());
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<std::unique_ptr<Fleet>> fleet = Fleet::Start(std::move(*store), 60'000, [] { return 1'000'000; });
    ASSERT_TRUE(fleet.ok()) << fleet.status();
    fleet_ = std::move(*fleet);
    service_ = std::make_unique<IngestService>(fleet_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = apq::v1::Ingest::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    service_.reset();
    fleet_.reset();
    Remove();
  }
  void Remove() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_.string() + suffix);
  }
  static apq::v1::AgentMessage Hello(const std::string& host) {
    apq::v1::AgentMessage message;
    message.mutable_hello()->set_cluster("prod");
    message.mutable_hello()->set_host(host);
    message.mutable_hello()->mutable_epoch()->set_boot_id("boot");
    return message;
  }

  std::filesystem::path path_;
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<IngestService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<apq::v1::Ingest::Stub> stub_;
};

TEST_F(IngestServiceTest, EachReportIsAckedInOrderOnceStored) {
  grpc::ClientContext context;
  auto stream = stub_->Stream(&context);
  ASSERT_TRUE(stream->Write(Hello("web-1")));
  apq::v1::AggregatorMessage reply;
  ASSERT_TRUE(stream->Read(&reply));
  ASSERT_TRUE(reply.has_ack());
  EXPECT_EQ(reply.ack().sequence(), 0u);
  FakeFrames frames;
  ReportStream reports(&frames, 1 << 20);
  FakeTracker tracker(5);
  apq::v1::AgentMessage message;
  for (int i = 0; i < 30; ++i) {
    reports.Add(tracker.Next(), {}, {}, i);
    *message.mutable_report() = reports.unacknowledged().back();
    ASSERT_TRUE(stream->Write(message));
    ASSERT_TRUE(stream->Read(&reply));
    ASSERT_TRUE(reply.has_ack()) << reply.DebugString();
    EXPECT_EQ(reply.ack().sequence(), static_cast<uint64_t>(i + 1));
    reports.Acknowledge(reply.ack().sequence());
  }
  // A resend of what is stored (its ack lost) is acked again, not applied twice.
  ASSERT_TRUE(stream->Write(message));
  ASSERT_TRUE(stream->Read(&reply));
  EXPECT_EQ(reply.ack().sequence(), 30u);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_.string());
  ASSERT_TRUE(store.ok());
  EpochState state;
  ASSERT_TRUE(OpenEpochState(**store, Hello("web-1").hello(), &state).ok());
  EXPECT_EQ(state.last_sequence(), 30u);
  ExpectStateMatches(state, tracker, reports);
}

TEST_F(IngestServiceTest, HostileStreamsAreRefusedWithAReason) {
  {
    grpc::ClientContext context;
    auto stream = stub_->Stream(&context);
    apq::v1::AgentMessage report;
    report.mutable_report()->set_sequence(1);
    ASSERT_TRUE(stream->Write(report));
    apq::v1::AggregatorMessage reply;
    EXPECT_FALSE(stream->Read(&reply));
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find("hello"), std::string::npos) << status.error_message();
  }
  {
    grpc::ClientContext context;
    auto stream = stub_->Stream(&context);
    ASSERT_TRUE(stream->Write(Hello("web-2")));
    apq::v1::AggregatorMessage reply;
    ASSERT_TRUE(stream->Read(&reply));
    apq::v1::AgentMessage bad;  // a series that was never introduced
    bad.mutable_report()->set_sequence(1);
    bad.mutable_report()->add_series()->set_series_id(7);
    ASSERT_TRUE(stream->Write(bad));
    EXPECT_FALSE(stream->Read(&reply));
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find("no key"), std::string::npos) << status.error_message();
  }
}

TEST_F(IngestServiceTest, StreamsThatVanishLeaveItServing) {
  std::vector<std::thread> clients;
  for (int i = 0; i < 40; ++i) {
    clients.emplace_back([this, i] {
      FakeFrames frames;
      ReportStream reports(&frames, 1 << 20);
      FakeTracker tracker(static_cast<uint32_t>(i + 1));
      grpc::ClientContext context;
      auto stream = stub_->Stream(&context);
      stream->Write(Hello("gone-" + std::to_string(i)));
      for (int r = 0; r < i % 4; ++r) {  // gone after 0..3 reports, mid-commit or not
        reports.Add(tracker.Next(), {}, {}, r);
        apq::v1::AgentMessage message;
        *message.mutable_report() = reports.unacknowledged().back();
        stream->Write(message);
      }
      context.TryCancel();
      stream->Finish().IgnoreError();
    });
  }
  for (std::thread& client : clients) client.join();
  grpc::ClientContext context;
  auto stream = stub_->Stream(&context);
  ASSERT_TRUE(stream->Write(Hello("still-here")));
  apq::v1::AggregatorMessage reply;
  ASSERT_TRUE(stream->Read(&reply));
  EXPECT_TRUE(reply.has_ack());
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

}  // namespace
}  // namespace apq
