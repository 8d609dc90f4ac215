// apq-fleet-load: N synthetic agents stream reports to an aggregator as
// fast as it acknowledges them, for the ingestion benchmark. Each agent has
// 40 series over 20 stacks whose counters change at random; each report
// waits for its ack before the next is sent (one report in flight per host,
// as a real agent has at most a few). Prints acknowledged reports per second.
//   apq-fleet-load --aggregator HOST:PORT --agents N --seconds S
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "agent/report_stream.h"
#include "aggregator/testing_fakes.h"
#include "apq/v1/apq.grpc.pb.h"
#include "grpcpp/grpcpp.h"

int main(int argc, char** argv) {
  std::string aggregator = "127.0.0.1:7070";
  int agents = 50;
  double seconds = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--aggregator")) aggregator = argv[i + 1];
    else if (!std::strcmp(argv[i], "--agents")) agents = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: apq-fleet-load --aggregator HOST:PORT --agents N --seconds S\n");
      return 2;
    }
  }
  auto channel = grpc::CreateChannel(aggregator, grpc::InsecureChannelCredentials());
  auto stub = apq::v1::Ingest::NewStub(channel);
  std::atomic<uint64_t> acked{0}, bytes{0};
  std::atomic<bool> failed{false};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int a = 0; a < agents; ++a) {
    threads.emplace_back([&, a] {
      apq::FakeFrames frames;
      apq::ReportStream stream(&frames, 1 << 24);
      apq::FakeTracker tracker(static_cast<uint32_t>(a + 1));
      grpc::ClientContext context;
      auto rpc = stub->Stream(&context);
      apq::v1::AgentMessage hello;
      hello.mutable_hello()->set_cluster("load");
      hello.mutable_hello()->set_host("load-" + std::to_string(a));
      hello.mutable_hello()->mutable_epoch()->set_boot_id("boot");
      hello.mutable_hello()->mutable_epoch()->set_agent_instance(static_cast<uint64_t>(std::rand()));
      apq::v1::AggregatorMessage reply;
      if (!rpc->Write(hello) || !rpc->Read(&reply)) {
        failed = true;
        return;
      }
      int64_t millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
      while (std::chrono::steady_clock::now() < deadline) {
        stream.Add(tracker.Next(), {}, {}, millis);
        apq::v1::AgentMessage message;
        *message.mutable_report() = stream.unacknowledged().back();
        bytes += message.ByteSizeLong();
        if (!rpc->Write(message) || !rpc->Read(&reply) || !reply.has_ack()) {
          failed = true;
          return;
        }
        stream.Acknowledge(reply.ack().sequence());
        ++acked;
      }
      rpc->WritesDone();
      rpc->Finish().IgnoreError();
    });
  }
  for (std::thread& t : threads) t.join();
  if (failed) std::fprintf(stderr, "apq-fleet-load: some streams failed\n");
  std::printf("%d agents, %.0f s: %llu reports acknowledged, %.0f reports/s, %.0f bytes/report\n", agents, seconds,
              static_cast<unsigned long long>(acked.load()), acked.load() / seconds,
              acked ? static_cast<double>(bytes.load()) / acked.load() : 0.0);
  return failed ? 1 : 0;
}
