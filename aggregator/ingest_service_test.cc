// The ingest service over real gRPC on loopback: acks follow commits in
// order, hostile streams are refused, and streams that vanish at any point
// leave the aggregator serving.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "aggregator/epoch_rows.h"
#include "aggregator/fleet.h"
#include "aggregator/ingest_service.h"
#include "tests/fakes/fleet_fakes.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

class IngestServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::path(::testing::TempDir()) / ("apq-ingest-" + std::to_string(getpid()) + ".db");
    Remove();
    Serve(ClusterLimits{}, 0);
  }
  // (Re)starts the service on the same file with these limits; the clock
  // stands still at now_millis_.
  void Serve(ClusterLimits limits, double bytes_per_second) {
    Stop();
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_.string());
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<std::unique_ptr<Fleet>> fleet =
        Fleet::Start(std::move(*store), 60'000, [this] { return now_millis_.load(); }, limits);
    ASSERT_TRUE(fleet.ok()) << fleet.status();
    fleet_ = std::move(*fleet);
    rate_ = std::make_unique<HostRateLimiter>(bytes_per_second, kBurstBytes);
    service_ = std::make_unique<IngestService>(fleet_.get(), /*client_certificates=*/false, rate_.get());
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
    Stop();
    Remove();
  }
  void Stop() {
    if (server_) server_->Shutdown();
    server_.reset();
    service_.reset();
    fleet_.reset();
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

  // Opens a stream as host, reads the hello's ack; false if refused.
  bool Open(grpc::ClientContext* context, const std::string& host,
            std::unique_ptr<grpc::ClientReaderWriter<apq::v1::AgentMessage, apq::v1::AggregatorMessage>>* stream) {
    *stream = stub_->Stream(context);
    apq::v1::AggregatorMessage reply;
    return (*stream)->Write(Hello(host)) && (*stream)->Read(&reply) && reply.has_ack();
  }

  static constexpr double kBurstBytes = 4096;
  std::atomic<int64_t> now_millis_{1'000'000};
  std::filesystem::path path_;
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<HostRateLimiter> rate_;
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
  ExpectStateMatches(state, tracker);
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
  EXPECT_EQ(fleet_->refusals().Of(Refusal::kInvalidMessage), 2u);
}

// A cluster's hosts and stacks are bounded, a host's bytes per second too:
// what goes beyond is refused with the limit's name, and counted; what is
// within goes on.
TEST_F(IngestServiceTest, ClusterAndHostLimitsRefuseAndCount) {
  ASSERT_NO_FATAL_FAILURE(Serve(ClusterLimits{2, 6}, 100));
  grpc::ClientContext c1, c2, c3, c4;
  std::unique_ptr<grpc::ClientReaderWriter<apq::v1::AgentMessage, apq::v1::AggregatorMessage>> s1, s2, s3, s4;
  ASSERT_TRUE(Open(&c1, "web-1", &s1));
  ASSERT_TRUE(Open(&c2, "web-2", &s2));
  EXPECT_FALSE(Open(&c3, "web-3", &s3)) << "a third host in a cluster of at most 2";
  grpc::Status refused = s3->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error_message().find("--max-hosts-per-cluster"), std::string::npos) << refused.error_message();
  EXPECT_EQ(fleet_->refusals().Of(Refusal::kClusterHosts), 1u);
  s2->WritesDone();
  EXPECT_TRUE(s2->Finish().ok());
  ASSERT_TRUE(Open(&c4, "web-2", &s4)) << "a host already counted comes back";

  // Stacks: 4 new ones fit in 6, 4 more do not.
  apq::v1::AgentMessage message;
  apq::v1::AggregatorMessage reply;
  auto report = [&](uint64_t sequence, uint32_t first_stack) {
    message.Clear();
    message.mutable_report()->set_sequence(sequence);
    message.mutable_report()->add_objects()->set_name("vmlinux");  // object 0
    for (uint32_t id = first_stack; id < first_stack + 4; ++id) {
      apq::v1::StackDefinition* stack = message.mutable_report()->add_stacks();
      stack->set_id(id);
      stack->add_frames()->set_offset(0x1000 + id);
    }
    return message;
  };
  ASSERT_TRUE(s1->Write(report(1, 1)));
  size_t passed = message.ByteSizeLong();  // counted against the host's rate below
  ASSERT_TRUE(s1->Read(&reply));
  ASSERT_TRUE(reply.has_ack()) << reply.DebugString();
  ASSERT_TRUE(s4->Write(report(1, 1)));
  EXPECT_FALSE(s4->Read(&reply));
  refused = s4->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error_message().find("--max-stacks-per-cluster"), std::string::npos) << refused.error_message();
  EXPECT_EQ(fleet_->refusals().Of(Refusal::kClusterStacks), 1u);

  // Rate: the burst (4 KiB) goes through, then 100 bytes a second.
  message.Clear();
  message.mutable_report()->mutable_losses()->set_free_unknown_pages(1);
  int sent = 0;
  for (; sent < 1000; ++sent) {
    message.mutable_report()->set_sequence(2 + sent);
    if (!s1->Write(message) || !s1->Read(&reply)) break;
    passed += message.ByteSizeLong();
  }
  EXPECT_LE(passed, kBurstBytes);
  EXPECT_GT(passed + message.ByteSizeLong(), kBurstBytes) << "refused before the burst was spent";
  refused = s1->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error_message().find("--max-host-bytes-per-second"), std::string::npos) << refused.error_message();
  EXPECT_EQ(fleet_->refusals().Of(Refusal::kHostRate), 1u);
  now_millis_ += 60'000;  // refilled: the host is welcome again
  grpc::ClientContext c5;
  std::unique_ptr<grpc::ClientReaderWriter<apq::v1::AgentMessage, apq::v1::AggregatorMessage>> s5;
  ASSERT_TRUE(Open(&c5, "web-1", &s5));
  message.mutable_report()->set_sequence(2 + sent);
  ASSERT_TRUE(s5->Write(message));
  ASSERT_TRUE(s5->Read(&reply));
  EXPECT_TRUE(reply.has_ack()) << reply.DebugString();
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
