// Root tier, fleet: an aggregator on a temporary database and two agents on
// this machine under different --host names.
#include <signal.h>
#include <linux/capability.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "common/ready_file.h"
#include "tests/integration/subprocess.h"

namespace apq {
namespace {

using ::apq::testing::BuiltBinary;
using ::apq::testing::IsPageTableAllocation;
using ::apq::testing::JsonNumber;
using ::apq::testing::Subprocess;
using ::apq::testing::ThreadCapabilities;
using ::apq::testing::WaitForReadyFile;

constexpr uint64_t kMiB = 1 << 20;

class FleetRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the root tier loads BPF programs: run it as root";
    db_ = std::filesystem::path(::testing::TempDir()) / ("apq-fleet-" + std::to_string(getpid()) + ".db");
    RemoveDb();
  }
  void TearDown() override { RemoveDb(); }
  void RemoveDb() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db_.string() + suffix);
    std::filesystem::remove_all(db_.string() + ".ready");
  }

  // Starts the aggregator; port 0 picks a free port the first time.
  std::unique_ptr<Subprocess> StartAggregator(const std::vector<std::string>& flags = {}) {
    std::vector<std::string> command = {BuiltBinary("aggregator/apq-aggregator"), "--listen",
                                        "127.0.0.1:" + std::to_string(port_), "--db", db_.string()};
    command.insert(command.end(), flags.begin(), flags.end());
    std::filesystem::remove(ReadyPath("aggregator"));
    command.insert(command.end(), {"--ready-file", ReadyPath("aggregator")});
    auto aggregator = std::make_unique<Subprocess>(command);
    port_ = static_cast<int>(ReadyPort("aggregator", "grpc_port"));
    EXPECT_NE(port_, 0) << aggregator->Stderr();
    return aggregator;
  }

  // Each daemon's --ready-file, by name ("aggregator", or an agent's host).
  std::string ReadyPath(const std::string& daemon) const {
    std::filesystem::create_directories(db_.string() + ".ready");
    return db_.string() + ".ready/" + daemon;
  }
  // A port the daemon announced in its ready file, once it is ready; 0 if none.
  int64_t ReadyPort(const std::string& daemon, const std::string& name) {
    std::string text;
    EXPECT_TRUE(WaitForReadyFile(ReadyPath(daemon), 120, &text)) << daemon << " is not ready: " << text;
    absl::StatusOr<int64_t> port = ReadyFact(text, name);
    EXPECT_TRUE(port.ok()) << port.status();
    return port.value_or(0);
  }

  std::unique_ptr<Subprocess> StartAgent(const std::string& host, const std::vector<std::string>& flags = {}) {
    std::vector<std::string> command = {BuiltBinary("agent/apq-agent"),
                                        "--aggregator",
                                        "127.0.0.1:" + std::to_string(port_),
                                        "--cluster",
                                        "ci",
                                        "--host",
                                        host,
                                        "--interval",
                                        "1",
                                        "--sample-bytes",
                                        "0"};
    command.insert(command.end(), flags.begin(), flags.end());
    std::filesystem::remove(ReadyPath(host));
    command.insert(command.end(), {"--ready-file", ReadyPath(host)});
    auto agent = std::make_unique<Subprocess>(command);
    std::string text;
    EXPECT_TRUE(WaitForReadyFile(ReadyPath(host), 120, &text)) << agent->Stderr();
    return agent;
  }

  // Held for longer than a test runs on a slow machine: the test ends them.
  std::unique_ptr<Subprocess> StartPipes(int pipes, const std::vector<std::string>& flags = {}) {
    std::vector<std::string> command = {BuiltBinary("tests/apq-hold-pipes"), "--pipes", std::to_string(pipes),
                                        "--hold-seconds", "600"};
    command.insert(command.end(), flags.begin(), flags.end());
    auto workload = std::make_unique<Subprocess>(command);
    EXPECT_TRUE(workload->WaitForOutput("ready", 60)) << workload->Stderr();
    return workload;
  }

  // `apq COMMAND` asking this test's aggregator about cluster ci, with flags.
  std::vector<std::string> Apq(const std::string& command, const std::vector<std::string>& flags) const {
    std::vector<std::string> argv = {
        BuiltBinary("cli/apq"), command, "--aggregator", "127.0.0.1:" + std::to_string(port_), "--cluster", "ci"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return argv;
  }

  // `apq top --format json --top 0 [flags]`: each entry's key and bytes.
  std::vector<std::pair<std::string, double>> TopEntries(const std::vector<std::string>& flags) {
    std::vector<std::string> command = Apq("top", {"--format", "json", "--top", "0"});
    command.insert(command.end(), flags.begin(), flags.end());
    Subprocess top(command);
    EXPECT_EQ(top.Wait(30), 0) << top.Stderr();
    const nlohmann::json answer = nlohmann::json::parse(top.Stdout(), nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(answer.is_object()) << top.Stdout();
    std::vector<std::pair<std::string, double>> entries;
    if (answer.is_object() && answer.contains("entries")) {
      for (const auto& entry : answer["entries"]) entries.emplace_back(entry["key"], entry["bytes_outstanding"]);
    }
    return entries;
  }

  // Bytes on pipe-write paths in `apq top --format folded [flags]`.
  uint64_t PipeBytes(const std::vector<std::string>& flags = {}) {
    std::vector<std::string> command = Apq("top", {"--format", "folded"});
    command.insert(command.end(), flags.begin(), flags.end());
    Subprocess top(command);
    if (top.Wait(30) != 0) {
      ADD_FAILURE() << "apq top failed: " << top.Stderr();
      return 0;
    }
    uint64_t total = 0;
    for (absl::string_view line : absl::StrSplit(top.Stdout(), '\n', absl::SkipEmpty())) {
      size_t space = line.rfind(' ');
      uint64_t bytes = 0;
      absl::string_view stack = line.substr(0, space);
      if ((absl::EndsWith(stack, ";anon_pipe_write") || absl::EndsWith(stack, ";pipe_write")) &&
          absl::SimpleAtoi(line.substr(space + 1), &bytes)) {
        total += bytes;
      }
    }
    return total;
  }

  // The workload's own pipe bytes now (apq top --pid): what other processes
  // write to pipes meanwhile cannot move it, so checks of it are exact.
  uint64_t PipeBytesOf(pid_t workload, std::vector<std::string> flags = {}) {
    flags.insert(flags.end(), {"--pid", std::to_string(workload)});
    return PipeBytes(flags);
  }

  // Polls until the workload's pipe bytes are `expected`; returns the last value.
  uint64_t WaitForPipeBytesOf(pid_t workload, uint64_t expected, double seconds,
                              const std::vector<std::string>& flags = {}) {
    uint64_t bytes = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      bytes = PipeBytesOf(workload, flags);
      if (bytes == expected) return bytes;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return bytes;
  }

  // `apq diff --format json --top 0 [flags]`.
  nlohmann::json Diff(const std::vector<std::string>& flags) {
    std::vector<std::string> command = Apq("diff", {"--format", "json", "--top", "0"});
    command.insert(command.end(), flags.begin(), flags.end());
    Subprocess diff(command);
    EXPECT_EQ(diff.Wait(30), 0) << diff.Stderr();
    return nlohmann::json::parse(diff.Stdout(), nullptr, /*allow_exceptions=*/false);
  }

  // The port a daemon said it serves on: "<marker><port>".
  static int PortAfter(Subprocess& daemon, const std::string& marker) {
    EXPECT_TRUE(daemon.WaitForOutput(marker, 60, true)) << daemon.Stderr();
    const std::string err = daemon.Stderr();
    const size_t at = err.find(marker) + marker.size();
    int port = 0;
    EXPECT_TRUE(absl::SimpleAtoi(err.substr(at, err.find_first_not_of("0123456789", at) - at), &port)) << err;
    return port;
  }

  // A shell command's standard output; its exit status into *status.
  static std::string Shell(const std::string& command, int* status) {
    Subprocess shell({"/bin/sh", "-c", command});
    *status = shell.Wait(60);
    return shell.Stdout() + shell.Stderr();
  }

  // `apq top --format pprof`, read by go tool pprof -top with options: the
  // bytes of the nodes it shows ("Showing nodes accounting for NB").
  uint64_t PprofBytes(pid_t workload, const std::vector<std::string>& options) {
    Subprocess top({BuiltBinary("cli/apq"), "top", "--aggregator", "127.0.0.1:" + std::to_string(port_), "--cluster",
                    "ci", "--format", "pprof", "--pid", std::to_string(workload)});
    EXPECT_EQ(top.Wait(30), 0) << top.Stderr();
    const std::string profile = db_.string() + ".pb.gz";
    std::ofstream(profile, std::ios::binary) << top.Stdout();
    std::vector<std::string> argv = {
        "/usr/bin/env", "GOCACHE=" + db_.string() + ".gocache", "go", "tool", "pprof", "-top", "-unit=B"};
    argv.insert(argv.end(), options.begin(), options.end());
    argv.push_back(profile);
    Subprocess go(argv);
    EXPECT_EQ(go.Wait(120), 0) << go.Stderr();
    const std::string out = go.Stdout();
    const std::string marker = "Showing nodes accounting for ";
    uint64_t bytes = 0;
    if (size_t at = out.find(marker); at != std::string::npos) {
      const std::string rest = out.substr(at + marker.size());
      EXPECT_TRUE(absl::SimpleAtoi(rest.substr(0, rest.find('B')), &bytes)) << out;
    }
    std::filesystem::remove(profile);
    return bytes;
  }

  // `apq explain --format json [flags]` summed over the hosts (one object).
  nlohmann::json Explain(const std::vector<std::string>& flags) {
    std::vector<std::string> command = Apq("explain", {"--format", "json", "--top", "0"});
    command.insert(command.end(), flags.begin(), flags.end());
    Subprocess explain(command);
    if (explain.Wait(30) != 0) return nlohmann::json();  // not classified yet
    return nlohmann::json::parse(explain.Stdout(), nullptr, /*allow_exceptions=*/false);
  }

  // Bytes the process holds on pipe-write paths of an explanation, on one
  // host ("": all).
  static double PipeBytesOf(const nlohmann::json& explained, pid_t tgid, const std::string& host) {
    double bytes = 0;
    for (const auto& path : explained["paths"]) {
      const std::string leaf = path["frames"].empty() ? "" : path["frames"].back().get<std::string>();
      if (leaf != "anon_pipe_write" && leaf != "pipe_write") continue;
      for (const auto& holder : path["processes"]) {
        if (holder["tgid"].get<pid_t>() != tgid) continue;
        if (!host.empty() && holder.value("host", "") != host) continue;
        bytes += holder["bytes"].get<double>();
      }
    }
    return bytes;
  }

  static void ExpectTermsAddUp(const nlohmann::json& e) {
    const double total = JsonNumber(e["mem_total_bytes"]);
    EXPECT_DOUBLE_EQ(JsonNumber(e["mem_free_bytes"]) + JsonNumber(e["visible_bytes"]) +
                         e["hidden_traced_bytes"].get<double>() + e["hidden_untraced_bytes"].get<double>(),
                     total);
    double parts = 0;
    for (const auto& part : e["hidden_untraced_parts"]) parts += part["bytes"].get<double>();
    EXPECT_NEAR(parts, e["hidden_untraced_bytes"].get<double>(), 1e-6 * total);
    // What no term explains stays small (docs/tracker.md): both agents watch this one machine.
    EXPECT_LT(std::fabs(e["hidden_untraced_parts"][1]["bytes"].get<double>()), 0.05 * total) << e.dump();
  }

  std::filesystem::path db_;
  int port_ = 0;
};

TEST_F(FleetRootTest, TwoAgentsSumOnThePipePathAndDropAfterExit) {
  constexpr int kPipes = 24;
  // History sampled every second; minute samples kept a minute, so --since
  // ten minutes reads the hourly peaks.
  auto aggregator = StartAggregator({"--sample-seconds", "1", "--keep-minutes", "1m"});
  auto a = StartAgent("host-a");
  auto b = StartAgent("host-b");
  auto workload = StartPipes(kPipes);
  // Each agent sees the workload: N x X MiB.
  const uint64_t expected = 2 * kPipes * kMiB;
  EXPECT_EQ(WaitForPipeBytesOf(workload->pid(), expected, 90), expected);
  // The same through the real consumer: go tool pprof reads apq top's
  // profile, outstanding and allocated since the agents started.
  EXPECT_EQ(PprofBytes(workload->pid(), {"-focus=^(anon_)?pipe_write$"}), expected);
  EXPECT_EQ(PprofBytes(workload->pid(), {"-sample_index=alloc_space", "-focus=^(anon_)?pipe_write$"}), expected);
  // apq diff against a time before any sample: every path is new, the pipe
  // path with the workload's bytes summed and per host of the 2 hosts, once
  // the newest history sample has them. History keeps no processes: to
  // within 0.1%, for other processes' pipes.
  auto pipes_sampled = [&](const nlohmann::json& diff) {
    if (!diff.is_object() || !diff.contains("entries")) return false;
    for (const auto& entry : diff["entries"]) {
      const std::string key = entry["key"];
      bool pipe = absl::EndsWith(key, ";anon_pipe_write") || absl::EndsWith(key, ";pipe_write");
      if (pipe && entry["after_bytes"].get<double>() >= expected && entry["after_hosts"] == 2) return true;
    }
    return false;
  };
  nlohmann::json diff;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
       !pipes_sampled(diff = Diff({"--before", "10m", "--after", "0s"})) &&
       std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  bool pipe_path = false;
  for (const auto& entry : diff["entries"]) {
    const std::string key = entry["key"];
    if (!absl::EndsWith(key, ";anon_pipe_write") && !absl::EndsWith(key, ";pipe_write")) continue;
    pipe_path = true;
    EXPECT_EQ(entry["status"], "new");
    EXPECT_GE(entry["after_bytes"].get<double>(), expected);
    EXPECT_LE(entry["after_bytes"].get<double>(), expected + expected / 1000);
    EXPECT_EQ(entry["after_hosts"], 2);
    EXPECT_DOUBLE_EQ(entry["after_bytes_per_host"].get<double>(), entry["after_bytes"].get<double>() / 2);
  }
  EXPECT_TRUE(pipe_path) << diff.dump();
  EXPECT_EQ(diff["after_cohort_hosts"], 2);
  workload->Signal(SIGTERM);
  workload->Wait(30);
  EXPECT_EQ(WaitForPipeBytesOf(workload->pid(), 0, 90), 0u) << "the workload's pages did not drop out";

  // History remembers: the peak of the last ten minutes is the workload's,
  // while the newest sample has it gone.
  uint64_t peak = PipeBytes({"--since", "10m"});
  EXPECT_GE(peak, expected);
  EXPECT_LE(peak, expected + expected / 1000);
  uint64_t newest = expected;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
       (newest = PipeBytes({"--at", "0s"})) >= expected / 1000 && std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_LT(newest, expected / 1000) << "the newest history sample still has the workload";
}

// A folded stack that takes a process's page table (IsPageTableAllocation):
// not the bytes of the load the process holds.
bool OfAProcessPageTable(const std::string& folded) {
  return IsPageTableAllocation(folded.substr(folded.rfind(';') + 1));
}

// What a person sees first of the fleet: apq top's default view is hidden
// pages only. Loads started after tracing: pipe buffers (hidden), empty
// pipes' rings (large kmallocs: Slab), anonymous memory, and a file written
// by dd (page cache). From the first answer on, none of the others' bytes
// is in the view (each load's own process, apq top --pid); the pipes are
// there to the byte within two report intervals (1 s each) and a margin for
// the report's way to the aggregator.
TEST_F(FleetRootTest, DefaultViewHoldsTheHiddenLoadAndNoneOfTheOthers) {
  constexpr int kPipes = 16;
  constexpr double kSeconds = 2 * 1.0 + 3;
  auto aggregator = StartAggregator();
  auto agent = StartAgent("host-a");
  ASSERT_TRUE(agent->WaitForOutput("connected to", 60, true)) << agent->Stderr();
  auto pipes = StartPipes(kPipes);
  auto rings = StartPipes(64, {"--pipe-bytes", std::to_string(kMiB), "--fill-bytes", "0"});
  auto anon = std::make_unique<Subprocess>(
      std::vector<std::string>{BuiltBinary("tests/apq-hold-anon"), "--mib", "16", "--hold-seconds", "600"});
  ASSERT_TRUE(anon->WaitForOutput("ready", 60)) << anon->Stderr();
  const std::string file = db_.string() + ".written";
  Subprocess dd({"/bin/dd", "if=/dev/zero", "of=" + file, "bs=1048576", "count=16"});
  ASSERT_EQ(dd.Wait(60), 0) << dd.Stderr();
  const auto ready = std::chrono::steady_clock::now();
  double pipe_bytes = 0, seconds = 0;
  do {
    for (pid_t other : {rings->pid(), anon->pid(), dd.pid()}) {
      for (const auto& [key, bytes] : TopEntries({"--pid", std::to_string(other)})) {
        if (!OfAProcessPageTable(key))
          ADD_FAILURE() << "process " << other << " in the hidden view: " << key << " " << bytes;
      }
    }
    pipe_bytes = 0;
    for (const auto& [key, bytes] : TopEntries({"--pid", std::to_string(pipes->pid())})) {
      if (absl::EndsWith(key, ";anon_pipe_write") || absl::EndsWith(key, ";pipe_write")) {
        pipe_bytes += bytes;
      } else if (!OfAProcessPageTable(key)) {
        ADD_FAILURE() << "the pipe workload's " << key << " in the hidden view: " << bytes;
      }
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - ready).count();
  } while (pipe_bytes != kPipes * kMiB && seconds < kSeconds && !HasFailure());
  std::filesystem::remove(file);
  EXPECT_EQ(pipe_bytes, kPipes * kMiB) << "after " << seconds << " s";
  std::printf("the pipes were in the default view to the byte %.1f s after the loads\n", seconds);

  // The same as a live view, as apq-agent --local shows it: asked again
  // every interval (piped: a log of tables), the holder under its path.
  Subprocess live(Apq("top", {"--interval", "0.5", "--processes", "--pid", std::to_string(pipes->pid())}));
  ASSERT_TRUE(live.WaitForOutput("pid " + std::to_string(pipes->pid()) + " apq-hold-pipes", 30)) << live.Stderr();
  ASSERT_TRUE(live.WaitForOutput("16.0 MiB", 30)) << live.Stdout();
  const auto tables = [&] {
    const std::string out = live.Stdout();
    size_t count = 0;
    for (size_t at = out.find("host, now"); at != std::string::npos; at = out.find("host, now", at + 1)) ++count;
    return count;
  };
  for (int i = 0; i < 100 && tables() < 3; ++i) usleep(100'000);
  EXPECT_GE(tables(), 3u) << live.Stdout();
  EXPECT_EQ(live.Stdout().find("\033[H"), std::string::npos) << "piped: no redraw codes";
  live.Signal(SIGINT);
  live.Wait(30);
}

// apq explain --cluster: a hidden load of X bytes held on two hosts shows
// in the summed hidden, traced term on its path, 2X to the byte from the
// workload's process; per host (--by host) X each; the terms add up to
// MemTotal in the sum and on each host. The class views agree: the pipe
// path is hidden, not visible.
TEST_F(FleetRootTest, ExplainSumsTheHostsAndClassViewsSplitThePages) {
  constexpr int kPipes = 24;
  auto aggregator = StartAggregator();
  auto a = StartAgent("host-a", {"--classify-interval", "1"});
  auto b = StartAgent("host-b", {"--classify-interval", "1"});
  auto workload = StartPipes(kPipes);
  const double per_host = kPipes * kMiB;
  nlohmann::json sum, by_host;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline) {
    sum = Explain({});
    if (sum.is_object() && PipeBytesOf(sum, workload->pid(), "") == 2 * per_host) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_TRUE(sum.is_object());
  EXPECT_EQ(sum["hosts"], 2);
  EXPECT_EQ(PipeBytesOf(sum, workload->pid(), "host-a"), per_host) << sum.dump();
  EXPECT_EQ(PipeBytesOf(sum, workload->pid(), "host-b"), per_host) << sum.dump();
  EXPECT_GE(sum["hidden_traced_bytes"].get<double>(), 2 * per_host);
  ExpectTermsAddUp(sum);

  Subprocess per({BuiltBinary("cli/apq"), "explain", "--aggregator", "127.0.0.1:" + std::to_string(port_), "--cluster",
                  "ci", "--by", "host", "--format", "json", "--top", "0"});
  ASSERT_EQ(per.Wait(30), 0) << per.Stderr();
  int hosts = 0;
  for (absl::string_view line : absl::StrSplit(per.Stdout(), '\n', absl::SkipEmpty())) {
    nlohmann::json host = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(host.is_object()) << line;
    ++hosts;
    EXPECT_EQ(host["hosts"], 1);
    EXPECT_GE(host["hidden_traced_bytes"].get<double>(), per_host);
    ExpectTermsAddUp(host);
  }
  EXPECT_EQ(hosts, 2);

  // The class views of apq top: the pipes are hidden, and not visible.
  EXPECT_EQ(WaitForPipeBytesOf(workload->pid(), 2 * per_host, 90, {"--class", "hidden"}), 2 * per_host);
  EXPECT_EQ(PipeBytesOf(workload->pid(), {"--class", "visible"}), 0u);
  workload->Signal(SIGTERM);
  workload->Wait(30);
}

TEST_F(FleetRootTest, AggregatorRestartLosesAndDuplicatesNothing) {
  constexpr int kPipes = 16;
  auto aggregator = StartAggregator();
  auto a = StartAgent("host-a");
  auto b = StartAgent("host-b");
  ASSERT_TRUE(a->WaitForOutput("connected to", 60, true));
  ASSERT_TRUE(b->WaitForOutput("connected to", 60, true));
  auto first = StartPipes(kPipes);
  const uint64_t one = 2 * kPipes * kMiB;
  EXPECT_EQ(WaitForPipeBytesOf(first->pid(), one, 90), one);

  // The aggregator goes away; meanwhile a second workload starts, and the
  // agents buffer what they see.
  aggregator->Signal(SIGTERM);
  ASSERT_EQ(aggregator->Wait(30), 0) << aggregator->Stderr();
  auto second = StartPipes(kPipes);
  // Both agents have found the aggregator gone and queue their reports.
  ASSERT_TRUE(a->WaitForOutput("aggregator unreachable", 60, true)) << a->Stderr();
  ASSERT_TRUE(b->WaitForOutput("aggregator unreachable", 60, true)) << b->Stderr();
  aggregator = StartAggregator();
  // Everything buffered arrives exactly once: not less, not twice.
  EXPECT_EQ(WaitForPipeBytesOf(second->pid(), one, 90), one);
  EXPECT_EQ(PipeBytesOf(first->pid()), one);
}

// With mutual TLS, an agent holding a certificate of the fleet's CA for its
// cluster and host streams as before; a plaintext agent and a plaintext CLI
// get nothing in or out, and an agent certified for another host is refused.
TEST_F(FleetRootTest, MutualTlsCarriesReportsAndShutsOutStrangers) {
  const std::string certs =
      (std::filesystem::path(::testing::TempDir()) / ("apq-fleet-certs-" + std::to_string(getpid()))).string();
  const std::string apq_certs = APQ_SOURCE_DIR "/deploy/apq-certs ";
  ASSERT_EQ(std::system(("(" + apq_certs + "init " + certs + " && " + apq_certs + "aggregator " + certs +
                         " localhost 127.0.0.1 && " + apq_certs + "agent " + certs + " ci host-tls && " + apq_certs +
                         "reader " + certs + " ci-reader ci) > /dev/null")
                            .c_str()),
            0);
  auto file = [&](const std::string& name) { return certs + "/" + name; };
  constexpr int kPipes = 8;
  auto aggregator = StartAggregator(
      {"--tls-cert", file("aggregator.crt"), "--tls-key", file("aggregator.key"), "--tls-client-ca", file("ca.crt")});
  EXPECT_NE(aggregator->Stderr().find("mutual TLS"), std::string::npos) << aggregator->Stderr();
  const std::vector<std::string> client = {"--tls-ca",   file("ca.crt"),
                                           "--tls-cert", file("agent-ci-host-tls.crt"),
                                           "--tls-key",  file("agent-ci-host-tls.key")};
  const std::vector<std::string> reader = {"--tls-ca",   file("ca.crt"),
                                           "--tls-cert", file("reader-ci-reader.crt"),
                                           "--tls-key",  file("reader-ci-reader.key")};
  auto impostor = StartAgent("host-other", client);
  ASSERT_TRUE(impostor->WaitForOutput("may not report as cluster 'ci' host 'host-other'", 60, true))
      << impostor->Stderr();
  auto member = StartAgent("host-tls", client);
  auto stranger = StartAgent("host-plaintext");
  ASSERT_TRUE(member->WaitForOutput("connected to", 60, true)) << member->Stderr();
  ASSERT_TRUE(stranger->WaitForOutput("aggregator unreachable", 60, true)) << stranger->Stderr();
  auto workload = StartPipes(kPipes);
  const uint64_t expected = kPipes * kMiB;  // one agent's view: the stranger's reports never land
  EXPECT_EQ(WaitForPipeBytesOf(workload->pid(), expected, 90, reader), expected);

  std::vector<std::string> hosts = {
      BuiltBinary("cli/apq"), "hosts", "--aggregator", "127.0.0.1:" + std::to_string(port_), "--cluster", "ci"};
  hosts.insert(hosts.end(), reader.begin(), reader.end());
  Subprocess listed(hosts);
  ASSERT_EQ(listed.Wait(30), 0) << listed.Stderr();
  EXPECT_NE(listed.Stdout().find("host-tls"), std::string::npos) << listed.Stdout();
  EXPECT_EQ(listed.Stdout().find("host-plaintext"), std::string::npos) << listed.Stdout();
  Subprocess plaintext_cli({BuiltBinary("cli/apq"), "hosts", "--aggregator", "127.0.0.1:" + std::to_string(port_),
                            "--cluster", "ci", "--timeout", "5"});
  EXPECT_NE(plaintext_cli.Wait(30), 0) << "a CLI without TLS was answered: " << plaintext_cli.Stdout();
  std::filesystem::remove_all(certs);
}

// Least privilege in fleet mode: every thread of the agent (gRPC's, the
// --metrics server's) holds CAP_BPF alone once tracing runs, and the
// reports still arrive.
TEST_F(FleetRootTest, EveryAgentThreadKeepsOnlyCapBpf) {
  auto aggregator = StartAggregator();
  auto agent = StartAgent("host-a", {"--metrics", "127.0.0.1:0"});
  auto workload = StartPipes(8);
  EXPECT_EQ(WaitForPipeBytesOf(workload->pid(), 8 * kMiB, 90), 8 * kMiB);
  const std::vector<uint64_t> threads = ThreadCapabilities(agent->pid());
  EXPECT_GT(threads.size(), 2u) << "gRPC's and the HTTP server's threads are running";
  for (uint64_t capabilities : threads) EXPECT_EQ(capabilities, uint64_t{1} << CAP_BPF) << std::hex << capabilities;
}

// Prometheus: the aggregator's and an agent's /metrics pass promtool, and a
// real Prometheus (Debian's) scraping both answers PromQL with the fleet's
// state: two hosts of the cluster, one agent connected.
TEST_F(FleetRootTest, PrometheusScrapesTheAggregatorAndAnAgent) {
  auto aggregator = StartAggregator({"--http", "127.0.0.1:0"});
  const int aggregator_http = static_cast<int>(ReadyPort("aggregator", "http_port"));
  auto a = StartAgent("host-a", {"--metrics", "127.0.0.1:0"});
  const int agent_http = static_cast<int>(ReadyPort("host-a", "metrics_port"));
  auto b = StartAgent("host-b");
  auto workload = StartPipes(8);
  const uint64_t expected = 2 * 8 * kMiB;
  EXPECT_EQ(WaitForPipeBytesOf(workload->pid(), expected, 90), expected);
  const std::string scraped = db_.string() + ".metrics";
  for (int port : {aggregator_http, agent_http}) {
    int status = 0;
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
    const std::string out =
        Shell("curl -sf " + url + " > " + scraped + " && promtool check metrics < " + scraped, &status);
    EXPECT_EQ(status, 0) << url << ": " << out;
  }
  int status = 0;
  const std::string metrics =
      Shell("curl -sf http://127.0.0.1:" + std::to_string(aggregator_http) + "/metrics", &status);
  EXPECT_NE(metrics.find("apq_host_outstanding_bytes{cluster=\"ci\",host=\"host-a\",class=\"hidden\"}"),
            std::string::npos)
      << metrics;

  const std::filesystem::path prometheus_dir = db_.string() + ".prometheus";
  std::filesystem::create_directories(prometheus_dir);
  std::ofstream(prometheus_dir / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: apq\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << aggregator_http << "', '127.0.0.1:" << agent_http << "']\n";
  // Port 0: Prometheus logs the port it got (a port found free beforehand
  // may be taken by the time it binds).
  Subprocess prometheus({"/usr/bin/prometheus", "--config.file=" + (prometheus_dir / "prometheus.yml").string(),
                         "--storage.tsdb.path=" + (prometheus_dir / "data").string(),
                         "--web.listen-address=127.0.0.1:0"});
  const int prometheus_port = PortAfter(prometheus, "msg=\"Listening on\" address=127.0.0.1:");
  auto query = [&](const std::string& promql) {
    int status = 0;
    const std::string out = Shell("curl -sf http://127.0.0.1:" + std::to_string(prometheus_port) +
                                      "/api/v1/query --data-urlencode 'query=" + promql + "'",
                                  &status);
    nlohmann::json answer = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
    if (status != 0 || !answer.is_object() || answer["data"]["result"].empty()) return std::string();
    return answer["data"]["result"][0]["value"][1].get<std::string>();
  };
  std::string hosts, connected;
  for (int i = 0; i < 180 && (hosts != "2" || connected != "1"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    hosts = query("apq_cluster_hosts{cluster=\"ci\"}");
    connected = query("sum(apq_agent_connected)");
  }
  EXPECT_EQ(hosts, "2") << prometheus.Stderr().substr(0, 4000);
  EXPECT_EQ(connected, "1");
  prometheus.Signal(SIGTERM);
  prometheus.Wait(30);
  std::filesystem::remove_all(prometheus_dir);
  std::filesystem::remove(scraped);
}

}  // namespace
}  // namespace apq
