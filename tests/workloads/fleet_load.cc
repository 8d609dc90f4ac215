// apq-fleet-load: synthetic agents that stream reports to an aggregator, for
// the ingestion benchmark. Each agent has 40 series over 20 stacks, all in
// its first report, whose counters change at random; each report waits for its ack before the next
// is sent (one report in flight per host, as a real agent has at most a
// few). With --interval 0 every agent sends as fast as it is acknowledged
// (the aggregator's ceiling); with --interval S each sends one report every
// S seconds, spread evenly over the interval, as a fleet does.
//
// Every agent connects and says hello first; then the measured window
// starts. Agents share one TCP connection per 50 (real agents have one
// each; one per agent would exhaust ports on the load machine long before
// the aggregator). Prints the connection time, acknowledged reports per
// second, the ack latency (send to ack) percentiles, and how many symbol
// tables the aggregator asked for (once per build is the goal).
//   apq-fleet-load --aggregator HOST:PORT --agents N --seconds S [--interval S]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agent/report_stream.h"
#include "tests/fakes/fleet_fakes.h"
#include "apq/v1/apq.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kBuildId[] = "fleet-load-build";

// The fake kernel's symbol table: the tracker's frames by name, among as
// many symbols as a distribution kernel has (~150,000), so uploads and
// parsing cost what they would.
apq::v1::SymbolTable KernelTable() {
  constexpr uint64_t kBase = 0xffffffff81000000ull;
  apq::v1::SymbolTable table;
  table.set_object("vmlinux");
  table.set_build_id(kBuildId);
  auto add = [&](uint64_t offset, std::string name) {
    apq::v1::Symbol* symbol = table.add_symbols();
    symbol->set_offset(offset);
    symbol->set_name(std::move(name));
  };
  add(apq::FakeTracker::kCallerFrame - kBase, "load_syscall");
  for (uint64_t s = 0; s < apq::FakeTracker::kMaxOwners / 2; ++s) {
    add(apq::FakeTracker::kStackFrame + s - kBase, "load_alloc_" + std::to_string(s));
  }
  for (uint64_t i = 0; i < 150'000; ++i) add(0x1000 + 0x40 * i, "kernel_function_" + std::to_string(i));
  return table;
}

Clock::duration Seconds(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace

int main(int argc, char** argv) {
  std::string aggregator = "127.0.0.1:7070";
  int agents = 50;
  double seconds = 10, interval = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--aggregator"))
      aggregator = argv[i + 1];
    else if (!std::strcmp(argv[i], "--agents"))
      agents = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seconds"))
      seconds = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--interval"))
      interval = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: apq-fleet-load --aggregator HOST:PORT --agents N --seconds S [--interval S]\n");
      return 2;
    }
  }
  if (agents <= 0 || !(seconds > 0) || !(interval >= 0)) {
    std::fprintf(stderr, "apq-fleet-load: --agents, --seconds must be positive, --interval not negative\n");
    return 2;
  }
  constexpr int kAgentsPerConnection = 50;
  std::vector<std::unique_ptr<apq::v1::Ingest::Stub>> stubs;
  for (int c = 0; c * kAgentsPerConnection < agents; ++c) {
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    stubs.push_back(
        apq::v1::Ingest::NewStub(grpc::CreateCustomChannel(aggregator, grpc::InsecureChannelCredentials(), arguments)));
  }
  const apq::v1::SymbolTable table = KernelTable();
  std::atomic<uint64_t> acked{0}, bytes{0}, tables_sent{0};
  std::atomic<bool> failed{false};
  absl::BlockingCounter connected(agents);
  absl::Notification started;
  Clock::time_point start, deadline;
  absl::Mutex latencies_mu;
  std::vector<double> latencies;  // seconds, of every acknowledged report
  const auto connect_start = Clock::now();
  std::vector<std::thread> threads;
  for (int a = 0; a < agents; ++a) {
    threads.emplace_back([&, a] {
      apq::v1::Ingest::Stub* stub = stubs[static_cast<size_t>(a / kAgentsPerConnection)].get();
      apq::FakeFrames frames(kBuildId);
      apq::ReportStream stream(&frames, 1 << 24);
      apq::FakeTracker tracker(static_cast<uint32_t>(a + 1));
      // A host's first report carries all its stacks and series, as an agent's does.
      apq::TrackerSnapshot first = tracker.Next();
      while (tracker.owners().size() < apq::FakeTracker::kMaxOwners) {
        apq::TrackerSnapshot next = tracker.Next();
        next.new_stacks.insert(first.new_stacks.begin(), first.new_stacks.end());
        first = std::move(next);
      }
      grpc::ClientContext context;
      auto rpc = stub->Stream(&context);
      apq::v1::AgentMessage hello;
      hello.mutable_hello()->set_cluster("load");
      hello.mutable_hello()->set_host("load-" + std::to_string(a));
      hello.mutable_hello()->mutable_epoch()->set_boot_id("boot");
      hello.mutable_hello()->mutable_epoch()->set_agent_instance(std::random_device()());
      hello.mutable_hello()->mutable_kernel()->set_build_id(kBuildId);
      apq::v1::AggregatorMessage reply;
      bool hello_ok = rpc->Write(hello) && rpc->Read(&reply);
      connected.DecrementCount();
      if (!hello_ok) {
        failed = true;
        return;
      }
      started.WaitForNotification();
      std::vector<double> mine;
      // Agent a's reports go at start + (a / agents + k) * interval.
      Clock::time_point next = start + Seconds(interval * a / agents);
      while (true) {
        if (interval > 0) std::this_thread::sleep_until(next);
        const Clock::time_point sent = Clock::now();
        if (sent >= deadline) break;
        int64_t millis =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        stream.Add(mine.empty() ? first : tracker.Next(), {}, {}, millis);
        apq::v1::AgentMessage message;
        *message.mutable_report() = stream.unacknowledged().back();
        bytes += message.ByteSizeLong();
        bool ok = rpc->Write(message);
        while (ok && (ok = rpc->Read(&reply)) && reply.has_need_symbols()) {
          apq::v1::AgentMessage symbols;
          *symbols.mutable_symbols() = table;
          ok = rpc->Write(symbols);
          ++tables_sent;
        }
        if (!ok || !reply.has_ack()) {
          if (!failed.exchange(true)) {
            grpc::Status status = ok ? grpc::Status::OK : rpc->Finish();
            std::fprintf(stderr, "apq-fleet-load: agent %d, report %zu: %s\n", a, mine.size() + 1,
                         ok ? reply.DebugString().c_str() : status.error_message().c_str());
          }
          return;
        }
        mine.push_back(std::chrono::duration<double>(Clock::now() - sent).count());
        stream.Acknowledge(reply.ack().sequence());
        ++acked;
        next += Seconds(interval);
      }
      rpc->WritesDone();
      rpc->Finish().IgnoreError();
      absl::MutexLock lock(&latencies_mu);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  connected.Wait();
  std::printf("%d agents connected in %.1f s\n", agents,
              std::chrono::duration<double>(Clock::now() - connect_start).count());
  std::fflush(stdout);
  start = Clock::now();
  deadline = start + Seconds(seconds);
  started.Notify();
  for (std::thread& t : threads) t.join();
  if (failed) std::fprintf(stderr, "apq-fleet-load: some streams failed\n");
  std::sort(latencies.begin(), latencies.end());
  auto percentile = [&](double p) {
    return latencies.empty() ? 0.0 : latencies[static_cast<size_t>(p * static_cast<double>(latencies.size() - 1))];
  };
  char pacing[64] = "none (as fast as acked)";
  if (interval > 0) std::snprintf(pacing, sizeof(pacing), "%g s", interval);
  std::printf(
      "%d agents, %.0f s, interval %s: %llu reports acknowledged, %.0f reports/s, %.0f bytes/report, "
      "ack latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
      agents, seconds, pacing, static_cast<unsigned long long>(acked.load()), acked.load() / seconds,
      acked ? static_cast<double>(bytes.load()) / acked.load() : 0.0, percentile(0.5) * 1e3, percentile(0.99) * 1e3,
      percentile(1.0) * 1e3);
  std::printf("symbol tables uploaded: %llu of %zu bytes each\n", static_cast<unsigned long long>(tables_sent.load()),
              table.ByteSizeLong());
  return failed ? 1 : 0;
}
