// libFuzzer target: what a reader sends, answered by a fleet that holds
// three hosts' reports and a few minutes of history. The first byte picks
// the query: one of the five gRPC requests (the rest of the input is its
// protobuf) or one of the web view's /api routes (the rest is its query
// string, key=value pairs split at '&'). Nothing may crash; an answer is a
// message or a clean error.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "aggregator/fleet.h"
#include "aggregator/query_web.h"
#include "tests/fakes/fleet_fakes.h"

namespace {

std::atomic<int64_t> now_millis{1'796'000'000'000};

// Three hosts of cluster "ci", each with a few reports, sampled into history
// over five minutes.
apq::Fleet* TheFleet() {
  static apq::Fleet* fleet = [] {
    static const std::string path = "/tmp/apq-fuzz-queries-" + std::to_string(getpid()) + ".db";
    static const auto remove = [] {
      for (const char* suffix : {"", "-wal", "-shm"}) unlink((path + suffix).c_str());
    };
    remove();
    std::atexit([] { remove(); });
    auto made = apq::Fleet::Start(*apq::Store::Open(path), 600'000, [] { return now_millis.load(); });
    if (!made.ok()) __builtin_trap();
    apq::Fleet* started = made->release();
    for (int host = 0; host < 3; ++host) {
      apq::v1::Hello hello;
      hello.set_cluster("ci");
      hello.set_host("host-" + std::to_string(host));
      hello.mutable_epoch()->set_boot_id("boot");
      hello.mutable_kernel()->set_build_id(std::string("build-") + static_cast<char>('a' + host % 2));
      uint64_t last = 0;
      const int64_t epoch = *started->Attach(hello, &last);
      apq::FakeFrames frames;
      apq::ReportStream reports(&frames, 1 << 20);
      apq::FakeTracker tracker(static_cast<uint32_t>(host + 1));
      for (int i = 0; i < 20; ++i) {
        reports.Add(tracker.Next(), {}, {}, now_millis.load());
        absl::Notification done;
        started->ApplyThen(epoch, reports.unacknowledged().back(), [&](auto) { done.Notify(); });
        done.WaitForNotification();
        reports.Acknowledge(reports.unacknowledged().back().sequence());
        if (i % 4 == 3) {
          now_millis += 60'000;
          if (!started->Sample().ok()) __builtin_trap();
        }
      }
    }
    return started;
  }();
  return fleet;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  apq::Fleet* fleet = TheFleet();
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 10) {
    case 0: {
      apq::v1::TopRequest request;
      if (request.ParseFromString(rest)) (void)fleet->Top(request);
      break;
    }
    case 1: {
      apq::v1::HostsRequest request;
      if (request.ParseFromString(rest)) (void)fleet->Hosts(request);
      break;
    }
    case 2: {
      apq::v1::ExplainRequest request;
      if (request.ParseFromString(rest)) (void)fleet->Explain(request);
      break;
    }
    case 3: {
      apq::v1::DiffRequest request;
      if (request.ParseFromString(rest)) (void)fleet->Diff(request);
      break;
    }
    case 4: {
      apq::v1::ClustersRequest request;
      if (request.ParseFromString(rest)) (void)fleet->Clusters([&rest](const std::string& c) { return c < rest; });
      break;
    }
    default: {
      static const std::vector<apq::HttpServer::Route> routes =
          apq::HttpRoutes(fleet, [] { return now_millis.load(); });
      const char* paths[] = {"/api/top", "/api/hosts", "/api/explain", "/api/diff", "/api/clusters"};
      apq::HttpServer::Params params;
      for (absl::string_view pair : absl::StrSplit(rest, '&')) {
        std::pair<std::string, std::string> split = absl::StrSplit(pair, absl::MaxSplits('=', 1));
        params[split.first] = split.second;
      }
      for (const apq::HttpServer::Route& route : routes) {
        if (route.path == paths[data[0] % 10 - 5]) (void)route.body(params);
      }
    }
  }
  return 0;
}
