// Root tier: loads the real BPF programs through apq-agent and checks its
// numbers against workloads that hold a known amount of hidden kernel memory.
#include <bpf/btf.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "common/sampling.h"
#include "tests/integration/subprocess.h"

namespace apq {
namespace {

using ::apq::testing::BuiltBinary;
using ::apq::testing::IsPageTableAllocation;
using ::apq::testing::JsonNumber;
using ::apq::testing::Subprocess;
using ::apq::testing::ThreadCapabilities;
using ::apq::testing::WaitForReadyFile;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kPipeRingBytes = 16384;  // 1 MiB pipes: 256 x 40 B ring, an order-2 large kmalloc

// The report's paths: apq top's entries for this host, grouped by stack.
const nlohmann::json& PathsOf(const nlohmann::json& report) { return report["top"]["entries"]; }

// A path's frames, root first (a stack's key is folded: root;...;leaf).
std::vector<std::string> FramesOf(const nlohmann::json& path) {
  return absl::StrSplit(path["key"].get<std::string>(), ';');
}

// The bytes of one class ("hidden": PAGE_CLASS_HIDDEN) in a list of class amounts; 0 if absent.
double ClassBytes(const nlohmann::json& classes, const std::string& name) {
  double bytes = 0;
  for (const auto& amount : classes) {
    if (amount["page_class"] == "PAGE_CLASS_" + absl::AsciiStrToUpper(name)) bytes += amount["bytes"].get<double>();
  }
  return bytes;
}

bool OnPath(const nlohmann::json& path, const std::string& function) {
  const std::vector<std::string> frames = FramesOf(path);
  return std::find(frames.begin(), frames.end(), function) != frames.end();
}

bool Hooked(const nlohmann::json& report, const std::string& path_name) {
  for (const auto& hooked : report["coverage"]["hooked"]) {
    if (hooked.get<std::string>().find(path_name) != std::string::npos) return true;
  }
  return false;
}

// The report's line on why path_name is not visible, or "" if it is not listed.
std::string BlindReason(const nlohmann::json& report, const std::string& path_name) {
  for (const auto& blind : report["coverage"]["not_visible"]) {
    if (blind.get<std::string>().find(path_name) != std::string::npos) return blind.get<std::string>();
  }
  return "";
}

bool ReportedBlind(const nlohmann::json& report, const std::string& path_name) {
  return !BlindReason(report, path_name).empty();
}

uint64_t KernelStructSize(const char* name) {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return 0;
  int id = btf__find_by_name_kind(vmlinux, name, BTF_KIND_STRUCT);
  long long size = id > 0 ? btf__resolve_size(vmlinux, id) : 0;
  btf__free(vmlinux);
  return size > 0 ? static_cast<uint64_t>(size) : 0;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  ASSERT_TRUE(out.good()) << "write " << path;
}

std::string Leaf(const nlohmann::json& path) { return FramesOf(path).back(); }

bool LeafStartsWith(const nlohmann::json& path, const std::string& prefix) { return Leaf(path).rfind(prefix, 0) == 0; }

// Pages vmalloc maps: the leaf is vmalloc's page-filling step, wherever the
// compiler inlined it (vm_area_alloc_pages on 6.18, __vmalloc_node_range on 6.1).
bool OnVmallocPagesPath(const nlohmann::json& path) {
  return LeafStartsWith(path, "vm_area_alloc_pages") || LeafStartsWith(path, "__vmalloc_area_node") ||
         LeafStartsWith(path, "__vmalloc_node_range");
}

// Anonymous page faults: vma_alloc_folio called by do_anonymous_page, or by
// __handle_mm_fault where do_anonymous_page was inlined (6.x); on 5.10 the
// allocator frame alloc_pages_vma is stripped and the leaf is the fault
// handler itself, do_anonymous_page inlined into (__)handle_mm_fault.
bool OnAnonymousFaultPath(const nlohmann::json& path) {
  const std::vector<std::string> frames = FramesOf(path);
  const std::string leaf = frames.back();
  if (leaf == "do_anonymous_page" || leaf == "__handle_mm_fault" || leaf == "handle_mm_fault") return true;
  if (frames.size() < 2 || !LeafStartsWith(path, "vma_alloc_folio")) return false;
  const std::string& caller = frames[frames.size() - 2];
  return caller == "do_anonymous_page" || caller == "__handle_mm_fault";
}

bool OnPipeWritePath(const nlohmann::json& path) {
  return OnPath(path, "anon_pipe_write") || OnPath(path, "pipe_write");
}

// Bytes the process holds on paths through the predicate.
template <typename Predicate>
double BytesOfProcess(const nlohmann::json& report, pid_t tgid, Predicate on_path) {
  double bytes = 0;
  for (const auto& path : PathsOf(report)) {
    if (!on_path(path)) continue;
    for (const auto& process : path["processes"]) {
      if (process["tgid"].get<pid_t>() == tgid) bytes += process["bytes"].get<double>();
    }
  }
  return bytes;
}

// The process's paths and bytes, for failure messages.
std::string PathsOfProcess(const nlohmann::json& report, pid_t tgid) {
  std::string out;
  for (const auto& path : PathsOf(report)) {
    for (const auto& process : path["processes"]) {
      if (process["tgid"].get<pid_t>() != tgid) continue;
      out += path["key"].get<std::string>() + " " + std::to_string(process["bytes"].get<double>()) + "\n";
    }
  }
  return out;
}

// A local agent's argv with a --ready-file of its own; the file's path
// into *path. The agent writes it once tracing runs.
std::vector<std::string> WithReadyFile(std::vector<std::string> argv, std::string* path) {
  static int agents = 0;
  *path = absl::StrCat(::testing::TempDir(), "apq-agent-", getpid(), "-", agents++, ".ready");
  std::filesystem::remove(*path);
  argv.insert(argv.end(), {"--ready-file", *path});
  return argv;
}

bool TracingStarted(const std::string& ready_file) {
  std::string text;
  const bool ready = WaitForReadyFile(ready_file, 120, &text);
  std::filesystem::remove(ready_file);
  return ready;
}

class AgentRootTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(geteuid(), 0u) << "the root tier loads BPF programs: run it as root"; }

  // Starts the agent and returns once its programs are attached. Loads
  // start after that, and the report is taken once they are held (the agent
  // stops on SIGTERM, see FinalReport), never after a fixed time: loading
  // and verifying the programs takes 0.8 s here and 8-10 s in a TCG guest.
  std::unique_ptr<Subprocess> StartAgent(std::vector<std::string> extra) {
    std::vector<std::string> argv = {BuiltBinary("agent/apq-agent"),
                                     "--local",
                                     "--format",
                                     "json",
                                     "--top",
                                     "0",
                                     "--duration",
                                     "3600",
                                     "--class",
                                     "all"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::string ready;
    auto agent = std::make_unique<Subprocess>(WithReadyFile(argv, &ready));
    EXPECT_TRUE(TracingStarted(ready)) << agent->Stderr();
    return agent;
  }

  std::unique_ptr<Subprocess> StartWorkload(std::vector<std::string> argv) {
    auto workload = std::make_unique<Subprocess>(argv);
    EXPECT_TRUE(workload->WaitForOutput("ready", 60)) << workload->Stderr();
    return workload;
  }

  std::unique_ptr<Subprocess> StartPipes(int pipes, int hold_seconds) {
    return StartWorkload({BuiltBinary("tests/apq-hold-pipes"), "--pipes", std::to_string(pipes), "--pipe-bytes",
                          std::to_string(kMiB), "--hold-seconds", std::to_string(hold_seconds)});
  }

  // Stops the agent and takes its final report, a snapshot of this moment;
  // a fatal failure if there is none. With --duration, json prints only the
  // final report (one_report); without, one a line, the final one last.
  void FinalReport(Subprocess& agent, double timeout, nlohmann::json* report, bool one_report = true) {
    agent.Signal(SIGTERM);
    int status = agent.Wait(timeout);
    ASSERT_EQ(status, 0) << agent.Stderr();
    std::string out = agent.Stdout();
    std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
    ASSERT_FALSE(lines.empty()) << agent.Stderr();
    if (one_report) {
      ASSERT_EQ(lines.size(), 1u) << out.substr(0, 2000);
    }
    *report = nlohmann::json::parse(lines.back(), nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(report->is_object() && report->contains("top")) << lines.back().substr(0, 2000);
  }

  // Nothing is lost silently: table and walk failures must not happen here,
  // and a page allocated over a still-owned one (its free event was missed)
  // must be explained by runs the kernel skipped and counted: an event that
  // fires in an interrupt while the program runs on that CPU is skipped.
  static void ExpectNothingLostSilently(const nlohmann::json& report) {
    const auto& losses = report["losses"];
    for (const char* counter :
         {"stack_walk_failed", "stack_truncated", "stack_table_full", "owner_table_full", "pfn_out_of_range",
          "order_too_large", "bulk_too_large", "contig_too_large", "uncalibrated"}) {
      EXPECT_EQ(JsonNumber(losses[counter]), 0) << counter;
    }
    // Skipped runs are counted on every kernel: by the kernel from 6.7, by
    // the raw tracepoint witnesses before (bpf/page_tracker.bpf.c), so the
    // bound below holds everywhere.
    const int64_t misses = static_cast<int64_t>(JsonNumber(losses["recursion_misses"]));
    ASSERT_GE(misses, 0) << "skipped tracepoint runs not counted";
    // A few over-live pages without a counted skipped run are an open finding
    // on 6.18 (2 and 14 pages, in 2 of about 6 root-tier runs on 2026-12-02;
    // docs/tracker.md): counted and reported, their cause not known yet. The
    // bound still fails on frees missed systematically.
    constexpr int64_t kUnexplainedOverLivePages = 64;
    EXPECT_LE(JsonNumber(losses["alloc_over_live_pages"]), misses * 1024 + kUnexplainedOverLivePages)
        << "pages found still owned at allocation, with no skipped event to explain them";
  }
};

TEST_F(AgentRootTest, PipeBuffersAttributedToTheByteAndDropWhenFreed) {
  constexpr int kPipes = 48;
  auto agent = StartAgent({"--interval", "1"});
  auto workload = StartPipes(kPipes, 300);
  nlohmann::json report;
  ASSERT_NO_FATAL_FAILURE(FinalReport(*agent, 60, &report));
  pid_t tgid = workload->pid();

  EXPECT_EQ(report["mode"], "exact");
  EXPECT_EQ(BytesOfProcess(report, tgid, OnPipeWritePath), kPipes * kMiB);
  // The high-order part: each ring is one order-2 allocation.
  EXPECT_EQ(BytesOfProcess(report, tgid, [](const auto& p) { return OnPath(p, "pipe_resize_ring"); }),
            kPipes * kPipeRingBytes);
  // cgroup v2: /proc/PID/cgroup says "0::/path" (among v1 lines on hybrid systems).
  std::string cgroup_line;
  std::ifstream cgroups("/proc/" + std::to_string(tgid) + "/cgroup");
  for (std::string line; std::getline(cgroups, line);) {
    if (line.rfind("0::", 0) == 0) cgroup_line = line;
  }
  ASSERT_FALSE(cgroup_line.empty()) << "no cgroup v2 line for the workload";
  bool comm_seen = false;
  for (const auto& path : PathsOf(report)) {
    if (!OnPipeWritePath(path)) continue;
    for (const auto& process : path["processes"]) {
      if (process["tgid"].get<pid_t>() != tgid) continue;
      comm_seen = process["comm"] == "apq-hold-pipes";
      EXPECT_EQ(process["cgroup"], cgroup_line.substr(3));
    }
  }
  EXPECT_TRUE(comm_seen);
  ExpectNothingLostSilently(report);
  // Each path without a tracepoint is either hooked or reported as not visible.
  for (const char* untraced : {"bulk allocator", "contiguous ranges", "page migration"}) {
    EXPECT_NE(Hooked(report, untraced), ReportedBlind(report, untraced)) << untraced;
  }
  EXPECT_GT(JsonNumber(report["in_use_at_start"]["bytes"]), 0);

  // Same workload, but it exits while traced: its path must drop to zero.
  auto second_agent = StartAgent({"--interval", "1"});
  auto short_workload = StartPipes(kPipes, 1);
  EXPECT_EQ(short_workload->Wait(30), 0);
  nlohmann::json after;
  ASSERT_NO_FATAL_FAILURE(FinalReport(*second_agent, 60, &after));
  EXPECT_EQ(BytesOfProcess(after, short_workload->pid(), OnPipeWritePath), 0);
  // Freed while traced, not only forgotten: the frees were seen.
  EXPECT_GE(JsonNumber(after["events"]["free_pages"]) * 4096, kPipes * kMiB);
  ExpectNothingLostSilently(after);
}

// The last complete report of an agent printing one json report a line.
nlohmann::json LatestReport(const Subprocess& agent) {
  std::string out = agent.Stdout();
  size_t end = out.rfind('\n');
  if (end == std::string::npos) return nlohmann::json();
  size_t start = out.rfind('\n', end - 1);
  start = start == std::string::npos ? 0 : start + 1;
  return nlohmann::json::parse(out.substr(start, end - start), nullptr, /*allow_exceptions=*/false);
}

// Waits (up to `seconds`) for `count` more json report lines than now.
bool WaitForReports(const Subprocess& agent, size_t count, int seconds) {
  auto lines = [&] {
    const std::string out = agent.Stdout();
    return static_cast<size_t>(std::count(out.begin(), out.end(), '\n'));
  };
  const size_t wanted = lines() + count;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
       std::chrono::steady_clock::now() < deadline; usleep(200'000)) {
    if (lines() >= wanted) return true;
  }
  return false;
}

// A host that runs short-lived processes for months must not fill the owner
// table: the owners of processes that freed everything are retired and
// their ids reused. With a table of 256 owners, a burst of short-lived
// processes overflows it (counted; the burst runs until the agent's reports
// say so, however many owners a process makes on this kernel); once they are
// gone and retired, a new workload is attributed to the byte again.
TEST_F(AgentRootTest, OwnersOfExitedProcessesAreReused) {
  constexpr int kPipes = 8, kMaxBurst = 400;
  // One json report a line, every second, so that the burst can watch.
  std::string ready;
  Subprocess agent(
      WithReadyFile(std::vector<std::string>{BuiltBinary("agent/apq-agent"), "--local", "--format", "json", "--top",
                                             "0", "--interval", "1", "--max-owners", "256", "--class", "all"},
                    &ready));
  ASSERT_TRUE(TracingStarted(ready)) << agent.Stderr();
  auto table_full = [&] {
    nlohmann::json latest = LatestReport(agent);
    return latest.is_object() && JsonNumber(latest["losses"]["owner_table_full"]) > 0;
  };
  // In waves of processes at once: owners of exited processes are retired
  // after 6 idle snapshots, so one process at a time on a slow machine (a
  // TCG guest, a busy host) may never fill the table.
  constexpr int kWave = 8;
  int burst = 0;
  while (burst < kMaxBurst && !table_full()) {
    std::vector<std::unique_ptr<Subprocess>> wave;
    for (int i = 0; i < kWave; ++i, ++burst) {
      wave.push_back(std::make_unique<Subprocess>(
          std::vector<std::string>{BuiltBinary("tests/apq-churn"), "--fault", std::to_string(8 * kMiB)}));
    }
    for (auto& churn : wave) ASSERT_EQ(churn->Wait(60), 0) << churn->Stderr();
  }
  ASSERT_TRUE(table_full()) << kMaxBurst << " short-lived processes never filled the table: this test shows nothing";
  // Once the burst's owners are idle for the tracker's 6 snapshots they are
  // recycled; a new workload then gets an owner of its own. Other processes
  // of a busy host (CI runs here) compete for the freed ids: a workload
  // whose pages went to the overflow owner is tried again, a few times.
  std::string attempts;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_TRUE(WaitForReports(agent, 7, 120)) << "the agent stopped reporting";  // the burst's owners retire
    auto workload = StartPipes(kPipes, 300);
    double bytes = 0;
    for (int report = 0; report < 5 && bytes != kPipes * kMiB && WaitForReports(agent, 1, 60); ++report) {
      nlohmann::json latest = LatestReport(agent);
      if (latest.is_object()) bytes = BytesOfProcess(latest, workload->pid(), OnPipeWritePath);
    }
    if (bytes == kPipes * kMiB) {
      if (attempt > 1) std::printf("owner ids reused at attempt %d; before: %s\n", attempt, attempts.c_str());
      return;
    }
    absl::StrAppend(&attempts, "attempt ", attempt, ": ", bytes, " bytes; ");
    workload->Signal(SIGTERM);
    workload->Wait(30);
  }
  ADD_FAILURE() << "after a burst of " << burst << " processes, a new workload never got an owner: " << attempts;
}

TEST_F(AgentRootTest, FoldedOutputSumsThePipePath) {
  constexpr int kPipes = 16;
  std::vector<std::string> argv = {
      BuiltBinary("agent/apq-agent"), "--local", "--format", "folded", "--duration", "3600"};
  std::string ready;
  Subprocess agent(WithReadyFile(argv, &ready));
  ASSERT_TRUE(TracingStarted(ready)) << agent.Stderr();
  auto workload = StartPipes(kPipes, 300);
  agent.Signal(SIGTERM);
  ASSERT_EQ(agent.Wait(60), 0) << agent.Stderr();
  uint64_t pipe_bytes = 0;
  for (absl::string_view line : absl::StrSplit(agent.Stdout(), '\n', absl::SkipEmpty())) {
    size_t space = line.rfind(' ');
    ASSERT_NE(space, absl::string_view::npos) << line;
    uint64_t bytes = 0;
    ASSERT_TRUE(absl::SimpleAtoi(line.substr(space + 1), &bytes)) << line;
    absl::string_view stack = line.substr(0, space);
    EXPECT_EQ(stack.find(' '), absl::string_view::npos) << line;
    if (absl::EndsWith(stack, ";anon_pipe_write") || absl::EndsWith(stack, ";pipe_write")) pipe_bytes += bytes;
  }
  // Other processes may write to pipes meanwhile; the workload's part is exact.
  EXPECT_GE(pipe_bytes, kPipes * kMiB);
  EXPECT_LT(pipe_bytes, kPipes * kMiB + kMiB);
  EXPECT_THAT(agent.Stderr(), HasSubstr("losses: "));
}

// --format pprof, read by the real consumer (Debian's go tool pprof): the
// workload's pipes on the pipe-write path, to the byte, under its pid.
TEST_F(AgentRootTest, PprofProfileIsReadByGoToolPprof) {
  constexpr int kPipes = 16;
  std::string ready;
  Subprocess agent(
      WithReadyFile(std::vector<std::string>{BuiltBinary("agent/apq-agent"), "--local", "--format", "pprof"}, &ready));
  ASSERT_TRUE(TracingStarted(ready)) << agent.Stderr();
  auto workload = StartPipes(kPipes, 300);
  agent.Signal(SIGTERM);
  ASSERT_EQ(agent.Wait(60), 0) << agent.Stderr();
  const std::string profile = ::testing::TempDir() + "/apq-agent-" + std::to_string(getpid()) + ".pb.gz";
  std::ofstream(profile, std::ios::binary) << agent.Stdout();
  auto pprof = [&](std::vector<std::string> options) {
    std::vector<std::string> argv = {
        "/usr/bin/env", "GOCACHE=" + ::testing::TempDir() + "/apq-gocache", "go", "tool", "pprof", "-top", "-unit=B"};
    argv.insert(argv.end(), options.begin(), options.end());
    argv.push_back(profile);
    Subprocess go(argv);
    EXPECT_EQ(go.Wait(120), 0) << go.Stderr();
    return go.Stdout();
  };
  const std::string pid = "-tagfocus=pid=" + std::to_string(workload->pid());
  const std::string pipes = pprof({pid, "-focus=^(anon_)?pipe_write$"});
  EXPECT_THAT(pipes, HasSubstr(absl::StrCat("Showing nodes accounting for ", kPipes * kMiB, "B"))) << pipes;
  // Its largest function is the pipe writer, as in apq's own table.
  const std::string top = pprof({pid});
  EXPECT_THAT(top, ::testing::ContainsRegex(
                       absl::StrCat(kPipes * kMiB, "B +[0-9.]+% +[0-9.]+% +[0-9]+B +[0-9.]+% +(anon_)?pipe_write")))
      << top;
  EXPECT_THAT(pprof({"-sample_index=alloc_space"}), HasSubstr("Type: alloc_space"));
  std::remove(profile.c_str());
}

// The table on a terminal is a live view redrawn in place each interval;
// piped, it is a plain log (the terminal comes from util-linux's script).
// Two tables are enough to tell a redraw from a log. --duration counts from
// the first snapshot, before the page census and symbols are read; CI's
// loaded machine drew its first table at 1.4 s, so 8 s leaves room for two
// on a much slower one.
TEST_F(AgentRootTest, TableIsALiveViewOnATerminalAndALogWhenPiped) {
  const std::string agent = BuiltBinary("agent/apq-agent") + " --local --interval 0.5 --duration 8 --top 3";
  constexpr char kClearScreen[] = "\033[H\033[2J";
  Subprocess on_terminal({"/usr/bin/script", "-qec", agent, "/dev/null"});
  ASSERT_EQ(on_terminal.Wait(60), 0) << on_terminal.Stderr();
  const std::string live = on_terminal.Stdout();
  size_t redraws = 0;
  for (size_t at = live.find(kClearScreen); at != std::string::npos; at = live.find(kClearScreen, at + 1)) ++redraws;
  EXPECT_GE(redraws, 2u) << live.substr(0, 2000);
  Subprocess piped({BuiltBinary("agent/apq-agent"), "--local", "--interval", "0.5", "--duration", "8", "--top", "3"});
  ASSERT_EQ(piped.Wait(60), 0) << piped.Stderr();
  const std::string log = piped.Stdout();
  EXPECT_EQ(log.find(kClearScreen), std::string::npos);
  size_t tables = 0;
  for (size_t at = log.find("apq local"); at != std::string::npos; at = log.find("apq local", at + 1)) ++tables;
  EXPECT_GE(tables, 2u) << "one table per interval, one after another: " << log.substr(0, 2000);
}

// The variance of a sampled estimate of `pipes` MiB-pipes' bytes (order-0 buffers).
double PipesTrueVariance(int pipes, uint64_t sample_bytes) {
  return SamplingPlan::ForSampleBytes(sample_bytes)
      ->EstimateVariance(0, static_cast<uint64_t>(pipes) * kMiB / kPageSize);
}

TEST_F(AgentRootTest, SampledEstimateIsCloseAndCarriesItsError) {
  constexpr int kPipes = 300;
  auto agent = StartAgent({"--interval", "1", "--sample-bytes", "524288"});
  auto workload = StartPipes(kPipes, 300);
  nlohmann::json report;
  ASSERT_NO_FATAL_FAILURE(FinalReport(*agent, 60, &report));
  EXPECT_EQ(report["mode"], "sampled");
  EXPECT_EQ(JsonNumber(report["sample_bytes"]), 524288);
  double estimate = 0, variance = 0;
  for (const auto& path : PathsOf(report)) {
    if (!OnPipeWritePath(path)) continue;
    estimate += BytesOfProcess(report, workload->pid(), [&](const auto& p) { return &p == &path; });
    variance += std::pow(path["standard_error"].get<double>(), 2);
  }
  const double truth = kPipes * kMiB;
  // Within 4 true standard errors (sqrt(N/B) = 4.1% here, so +-16%); the
  // reported one, from ~600 samples of one order, is near it.
  const double true_variance = PipesTrueVariance(kPipes, 524288);
  EXPECT_NEAR(estimate, truth, 4 * std::sqrt(true_variance));
  EXPECT_GT(std::sqrt(variance), 0.02 * truth);
  EXPECT_LT(std::sqrt(variance), 0.08 * truth);
  // Totals stay exact whatever the sampling.
  EXPECT_GE(JsonNumber(report["tracked_bytes_outstanding"]), truth);
  ExpectNothingLostSilently(report);
}

// Empty pipes whose ring is one allocation of each order from 3 to 9: a
// pipe of 2^(order-2) MiB has 2^(order+6) slots of struct pipe_buffer, a
// large kmalloc straight from the page allocator. fs.pipe-max-size is
// raised to allow them for the test and restored after. The counts keep each
// order's standard error near 10% at --sample-bytes 512 KiB.
struct RingLoad {
  int order;
  int pipes;
};
constexpr RingLoad kRingLoads[] = {{3, 1500}, {4, 800}, {5, 400}, {6, 200}, {7, 100}, {8, 50}, {9, 25}};

class PipeRingsOfEveryOrder : public AgentRootTest {
 protected:
  static constexpr const char* kPipeMaxSize = "/proc/sys/fs/pipe-max-size";

  void SetUp() override {
    AgentRootTest::SetUp();
    std::ifstream(kPipeMaxSize) >> saved_pipe_max_size_;
    ASSERT_FALSE(saved_pipe_max_size_.empty());
    ASSERT_NO_FATAL_FAILURE(
        WriteFile(kPipeMaxSize, std::to_string((kMiB << kRingLoads[std::size(kRingLoads) - 1].order) >> 2)));
  }
  void TearDown() override {
    workloads_.clear();
    if (!saved_pipe_max_size_.empty()) WriteFile(kPipeMaxSize, saved_pipe_max_size_);
  }

  // Starts one workload per order; each holds its rings until killed.
  void HoldRings() {
    const uint64_t slot_bytes = KernelStructSize("pipe_buffer");
    ASSERT_GT(slot_bytes, 0u);
    for (const RingLoad& load : kRingLoads) {
      const uint64_t pipe_bytes = (kMiB << load.order) >> 2;
      const uint64_t ring_pages = (pipe_bytes / 4096 * slot_bytes + 4095) / 4096;
      // The ring must be a page allocation of exactly this order: above the
      // largest kmalloc cache (two pages), at most 2^order pages, more than half.
      ASSERT_GT(ring_pages, 2u);
      ASSERT_LE(ring_pages, uint64_t{1} << load.order);
      ASSERT_GT(ring_pages, uint64_t{1} << (load.order - 1));
      workloads_.push_back(
          StartWorkload({BuiltBinary("tests/apq-hold-pipes"), "--pipes", std::to_string(load.pipes), "--pipe-bytes",
                         std::to_string(pipe_bytes), "--fill-bytes", "0", "--hold-seconds", "120"}));
      ASSERT_FALSE(HasFailure()) << "order " << load.order;
    }
  }

  static bool OnRingPath(const nlohmann::json& path) { return OnPath(path, "pipe_resize_ring"); }
  static double TruthBytes(const RingLoad& load) { return load.pipes * 4096.0 * (1 << load.order); }

  std::string saved_pipe_max_size_;
  std::vector<std::unique_ptr<Subprocess>> workloads_;
};

TEST_F(PipeRingsOfEveryOrder, ExactToTheByte) {
  auto agent = StartAgent({"--interval", "1"});
  ASSERT_NO_FATAL_FAILURE(HoldRings());
  nlohmann::json report;
  ASSERT_NO_FATAL_FAILURE(FinalReport(*agent, 120, &report));
  for (size_t i = 0; i < std::size(kRingLoads); ++i) {
    EXPECT_EQ(BytesOfProcess(report, workloads_[i]->pid(), OnRingPath), TruthBytes(kRingLoads[i]))
        << "order " << kRingLoads[i].order << "\n"
        << PathsOfProcess(report, workloads_[i]->pid());
  }
  ExpectNothingLostSilently(report);
}

// Sampled mode weighs each page by its own order's probability: each order
// lands within 4 standard errors of its truth (7 orders: a false alarm about
// once in 2,000 runs), and so does their sum.
TEST_F(PipeRingsOfEveryOrder, SampledEstimateOfEachOrderIsWithinItsError) {
  constexpr uint64_t kSampleBytes = 524288;
  const SamplingPlan plan = *SamplingPlan::ForSampleBytes(kSampleBytes);
  auto agent = StartAgent({"--interval", "1", "--sample-bytes", std::to_string(kSampleBytes)});
  ASSERT_NO_FATAL_FAILURE(HoldRings());
  nlohmann::json report;
  ASSERT_NO_FATAL_FAILURE(FinalReport(*agent, 120, &report));
  ASSERT_EQ(report["mode"], "sampled");
  double estimate_sum = 0, truth_sum = 0, true_variance = 0, reported_variance = 0;
  for (size_t i = 0; i < std::size(kRingLoads); ++i) {
    const RingLoad& load = kRingLoads[i];
    const double truth = TruthBytes(load), estimate = BytesOfProcess(report, workloads_[i]->pid(), OnRingPath);
    // The spread of an unbiased estimate of `truth` bytes of this order.
    const double variance = plan.EstimateVariance(load.order, load.pipes << load.order);
    EXPECT_NEAR(estimate, truth, 4 * std::sqrt(variance))
        << "order " << load.order << ": " << estimate / truth * 100 << "% of the truth";
    estimate_sum += estimate;
    truth_sum += truth;
    true_variance += variance;
  }
  for (const auto& path : PathsOf(report)) {
    if (OnRingPath(path)) reported_variance += std::pow(path["standard_error"].get<double>(), 2);
  }
  // The sum against its true spread, at 4 standard errors like each order
  // (against 3 reported ones it failed by chance: 3.13 on 5.10, 2026-12-02;
  // the reported error is itself a heavy-tailed estimate from the samples,
  // once a seventh of the true variance here, so it only has to be there).
  EXPECT_NEAR(estimate_sum, truth_sum, 4 * std::sqrt(true_variance));
  EXPECT_GT(reported_variance, 0);
  ExpectNothingLostSilently(report);
}

// BPF array maps live in vmalloc memory, which the bulk allocator fills
// without mm_page_alloc events.
TEST_F(AgentRootTest, BulkAllocatedPagesAttributedWhereHookable) {
  constexpr int kMaps = 32, kEntries = 500, kValueSize = 4096;
  uint64_t header = KernelStructSize("bpf_array");
  ASSERT_GT(header, 0u);
  // Each map's storage: one vmalloc area of PAGE_ALIGN(header + entries *
  // value) bytes, small enough that its page-pointer array is a kmalloc.
  const uint64_t map_bytes = (header + uint64_t{kEntries} * kValueSize + 4095) / 4096 * 4096;
  auto agent = StartAgent({"--interval", "1"});
  auto workload =
      StartWorkload({BuiltBinary("tests/apq-hold-maps"), "--maps", std::to_string(kMaps), "--entries",
                     std::to_string(kEntries), "--value-size", std::to_string(kValueSize), "--hold-seconds", "600"});
  nlohmann::json report;
  ASSERT_NO_FATAL_FAILURE(FinalReport(*agent, 60, &report));
  double bytes = BytesOfProcess(report, workload->pid(), [](const auto& p) {
    return (OnPath(p, "bpf_map_area_alloc") || OnPath(p, "__bpf_map_area_alloc")) && OnVmallocPagesPath(p);
  });
  ExpectNothingLostSilently(report);
  if (Hooked(report, "bulk allocator")) {
    EXPECT_EQ(bytes, kMaps * map_bytes) << PathsOfProcess(report, workload->pid());
    if (JsonNumber(report["events"]["bulk_pages"]) == 0) {
      // Exact, and all through the traced allocator: vmalloc did not use the
      // bulk allocator. openEuler's 5.10 backports it, but its vmalloc still
      // takes pages one by one and its only users (page_pool, sunrpc) are not
      // built into this kernel; page_owner=on also turns bulk calls into
      // traced single-page allocations.
      GTEST_SKIP() << "premise does not hold: the fexit hook is attached, but this kernel's vmalloc does not use the "
                      "bulk allocator and no other bulk user ran (its map pages were exact through the tracepoint)";
    }
  } else {
    // Not hookable here: the path must be reported as not visible, and what
    // is seen (pages that came through the traced allocator; on 6.18 all of
    // these) is never more than the truth.
    EXPECT_TRUE(ReportedBlind(report, "bulk allocator"));
    EXPECT_LE(bytes, kMaps * map_bytes);
  }
}

// Compaction migrates the workload's scattered pages into pages that never
// had an allocation event; the owner must follow the contents.
TEST_F(AgentRootTest, MigratedPagesKeepTheirOwner) {
  constexpr int kMiBHeld = 64;
  // Compaction moves only what fragmentation gives it: a run in which it
  // moved nothing (seen on 6.6) proves nothing, and is tried again.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto agent = StartAgent({"--interval", "1"});
    auto workload =
        StartWorkload({BuiltBinary("tests/apq-hold-anon"), "--mib", std::to_string(kMiBHeld), "--hold-seconds", "600"});
    for (int i = 0; i < 2; ++i) WriteFile("/proc/sys/vm/compact_memory", "1");
    nlohmann::json report;
    ASSERT_NO_FATAL_FAILURE(FinalReport(*agent, 60, &report));
    ExpectNothingLostSilently(report);
    if (!Hooked(report, "page migration")) {
      ASSERT_TRUE(ReportedBlind(report, "page migration"));
      GTEST_SKIP() << "migration cannot be followed here, as the report says: "
                   << BlindReason(report, "page migration");
    }
    if (JsonNumber(report["events"]["migrated_pages"]) == 0 && attempt < 3) continue;
    EXPECT_GT(JsonNumber(report["events"]["migrated_pages"]), 0u) << "compaction moved nothing in 3 runs";
    double bytes = BytesOfProcess(report, workload->pid(), OnAnonymousFaultPath);
    // The held pages, plus the few the process faulted in for its own heap and stack.
    EXPECT_GE(bytes, kMiBHeld * kMiB) << PathsOfProcess(report, workload->pid());
    EXPECT_LE(bytes, kMiBHeld * kMiB + kMiB / 2);
    return;
  }
}

// A gigantic hugetlb page comes from alloc_contig_range, without
// mm_page_alloc; it is freed page by page.
TEST_F(AgentRootTest, GiganticPageAttributedWhereHookable) {
  const std::string pool = "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages";
  auto agent = StartAgent({"--interval", "1"});
  bool have_pool = std::ifstream(pool).good();
  if (have_pool) WriteFile(pool, "1");
  nlohmann::json report;
  ASSERT_NO_FATAL_FAILURE(FinalReport(*agent, 120, &report));
  if (have_pool) WriteFile(pool, "0");
  ExpectNothingLostSilently(report);
  if (!Hooked(report, "contiguous ranges")) {
    ASSERT_TRUE(ReportedBlind(report, "contiguous ranges"));
    GTEST_SKIP() << "contiguous ranges are not visible here, as the report says: "
                 << BlindReason(report, "contiguous ranges");
  }
  ASSERT_TRUE(have_pool) << "no 1 GiB hugetlb pool on this kernel/CPU";
  double bytes = BytesOfProcess(report, getpid(), [](const auto& p) { return OnPath(p, "alloc_contig_pages"); });
  EXPECT_EQ(bytes, 1024.0 * kMiB);
  EXPECT_EQ(JsonNumber(report["events"]["contig_pages"]), 262144u);
}

// One record of /sys/kernel/debug/page_owner: an allocated (head) page.
struct PageOwnerRecord {
  pid_t tgid = 0;  // 6.x prints the tgid; 5.10 only the thread id (the workloads are single-threaded)
  uint64_t bytes = 0;
  std::vector<std::string> frames;  // innermost first, function names
};

// Parses page_owner's records ("Page allocated via order N, mask ..., pid P[,
// tgid T (comm)], ts ...", a PFN line, then one " function+0x../0x.." line a
// frame, then a blank line); records of other processes are dropped early.
std::vector<PageOwnerRecord> ReadPageOwner(const std::set<pid_t>& tgids) {
  std::vector<PageOwnerRecord> records;
  std::ifstream in("/sys/kernel/debug/page_owner");
  PageOwnerRecord current;
  bool keep = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Page allocated via order ", 0) == 0) {
      if (keep) records.push_back(std::move(current));
      current = PageOwnerRecord{};
      unsigned order = 0;
      int pid = 0, tgid = -1;
      sscanf(line.c_str(), "Page allocated via order %u", &order);
      size_t at = line.find(", pid ");
      if (at != std::string::npos) sscanf(line.c_str() + at, ", pid %d", &pid);
      at = line.find(", tgid ");
      if (at != std::string::npos) sscanf(line.c_str() + at, ", tgid %d", &tgid);
      current.tgid = tgid >= 0 ? tgid : pid;
      current.bytes = uint64_t{4096} << order;
      keep = tgids.count(current.tgid) > 0;
    } else if (keep && line.size() > 1 && line[0] == ' ') {
      std::string frame = line.substr(line.find_first_not_of(' '));
      current.frames.push_back(frame.substr(0, frame.find('+')));
    }
  }
  if (keep) records.push_back(std::move(current));
  return records;
}

template <typename Predicate>
uint64_t PageOwnerBytes(const std::vector<PageOwnerRecord>& records, pid_t tgid, Predicate on_path) {
  uint64_t bytes = 0;
  for (const PageOwnerRecord& r : records) {
    if (r.tgid == tgid && on_path(r.frames)) bytes += r.bytes;
  }
  return bytes;
}

// page_owner's paths of a process with their bytes, innermost frame first,
// for failure messages.
std::string PageOwnerPathsOf(const std::vector<PageOwnerRecord>& records, pid_t tgid) {
  std::map<std::string, uint64_t> bytes_by_path;
  for (const PageOwnerRecord& r : records) {
    if (r.tgid == tgid) bytes_by_path[absl::StrJoin(r.frames, ";")] += r.bytes;
  }
  std::string out;
  for (const auto& [path, bytes] : bytes_by_path) out += path + " " + std::to_string(bytes) + "\n";
  return out;
}

bool FramesInclude(const std::vector<std::string>& frames, std::initializer_list<const char*> functions) {
  for (const std::string& frame : frames) {
    for (const char* function : functions) {
      if (frame == function) return true;
    }
  }
  return false;
}

// The kernel's own record of every allocated page is the strongest ground
// truth there is: with page_owner on, known loads (pipe buffers, pipe rings
// of orders 2-6, anonymous memory) must have the same bytes in apq as in
// page_owner, per path and per process.
TEST_F(AgentRootTest, PageOwnerAgreesPerProcessAndPath) {
  if (access("/sys/kernel/debug/page_owner", R_OK) != 0) {
    std::ifstream kallsyms("/proc/kallsyms");
    std::string symbols((std::istreambuf_iterator<char>(kallsyms)), std::istreambuf_iterator<char>());
    if (symbols.find(" read_page_owner\n") == std::string::npos) {
      GTEST_SKIP() << "this kernel lacks page_owner: built without CONFIG_PAGE_OWNER (no read_page_owner in kallsyms)";
    }
    GTEST_SKIP() << "page_owner is built in but off: boot with page_owner=on (the guest tier does)";
  }
  auto agent = StartAgent({"--interval", "1"});
  std::vector<std::unique_ptr<Subprocess>> loads;
  loads.push_back(StartPipes(32, 600));
  for (int order = 2; order <= 6; ++order) {
    loads.push_back(
        StartWorkload({BuiltBinary("tests/apq-hold-pipes"), "--pipes", "16", "--pipe-bytes",
                       std::to_string((kMiB << order) >> 2), "--fill-bytes", "0", "--hold-seconds", "600"}));
  }
  loads.push_back(StartWorkload({BuiltBinary("tests/apq-hold-anon"), "--mib", "32", "--hold-seconds", "600"}));
  ASSERT_FALSE(HasFailure());
  // Pages the workloads unmapped can still sit in per-CPU LRU batches, which
  // hold a reference until drained; they would be freed between apq's
  // snapshot and the page_owner read. mlock drains every CPU's batches.
  static char drain_page[4096] __attribute__((aligned(4096)));
  ASSERT_EQ(mlock(drain_page, sizeof(drain_page)), 0) << strerror(errno);
  munlock(drain_page, sizeof(drain_page));
  // The kernel may still free a page of these processes while the agent
  // takes its snapshot (the 5- and 6-page excesses seen on 6.6 in 2 of about
  // 10 runs): page_owner is read before and after it, and apq must lie
  // between the two reads; where they agree, it must equal them.
  std::set<pid_t> tgids;
  for (const auto& load : loads) tgids.insert(load->pid());
  const std::vector<PageOwnerRecord> before = ReadPageOwner(tgids);
  nlohmann::json report;
  ASSERT_NO_FATAL_FAILURE(FinalReport(*agent, 120, &report));
  const std::vector<PageOwnerRecord> after = ReadPageOwner(tgids);
  ExpectNothingLostSilently(report);

  struct NamedPath {
    const char* name;
    std::function<bool(const std::vector<std::string>&)> on_path;
  };
  const NamedPath paths[] = {
      {"pipe write", [](const auto& f) { return FramesInclude(f, {"pipe_write", "anon_pipe_write"}); }},
      {"pipe ring", [](const auto& f) { return FramesInclude(f, {"pipe_resize_ring"}); }},
      {"page fault", [](const auto& f) { return FramesInclude(f, {"handle_mm_fault"}); }},
      {"whole process", [](const auto&) { return true; }},
  };
  const int64_t misses = static_cast<int64_t>(JsonNumber(report["losses"]["recursion_misses"]));
  for (const auto& load : loads) {
    const pid_t tgid = load->pid();
    for (const NamedPath& path : paths) {
      const double apq = BytesOfProcess(report, tgid, [&](const auto& p) { return path.on_path(FramesOf(p)); });
      const double kernel_before = static_cast<double>(PageOwnerBytes(before, tgid, path.on_path));
      const double kernel_after = static_cast<double>(PageOwnerBytes(after, tgid, path.on_path));
      EXPECT_TRUE(kernel_after <= apq && apq <= kernel_before)
          << path.name << " of " << load->Stdout() << "apq " << apq << ", page_owner before " << kernel_before
          << " and after " << kernel_after << ", recursion misses " << misses << "\napq:\n"
          << PathsOfProcess(report, tgid) << "page_owner before:\n"
          << PageOwnerPathsOf(before, tgid) << "page_owner after:\n"
          << PageOwnerPathsOf(after, tgid);
    }
  }
}

// Bytes of the process on paths through the predicate, in one class
// ("hidden", "anon", ...).
template <typename Predicate>
double ClassBytesOfProcess(const nlohmann::json& report, pid_t tgid, const std::string& page_class, Predicate on_path) {
  double bytes = 0;
  for (const auto& path : PathsOf(report)) {
    if (!on_path(path)) continue;
    for (const auto& process : path["processes"]) {
      if (process["tgid"].get<pid_t>() == tgid) bytes += ClassBytes(process["classes"], page_class);
    }
  }
  return bytes;
}

// Every outstanding page is classified by how /proc/meminfo counts it:
// pipe buffers and unread socket data are hidden (pipes to the byte);
// anonymous memory, written files and vmalloc'd BPF maps are in the classes
// their meminfo fields count, never hidden.
TEST_F(AgentRootTest, PagesAreClassifiedByHowMeminfoCountsThem) {
  constexpr int kPipes = 24, kAnonMiB = 32, kConnections = 8;
  constexpr uint64_t kFileBytes = 16 * kMiB;
  auto agent = StartAgent({"--interval", "1"});
  auto pipes = StartPipes(kPipes, 300);
  auto sockets = StartWorkload({BuiltBinary("tests/apq-hold-sockets"), "--connections", std::to_string(kConnections),
                                "--bytes", std::to_string(4 * kMiB), "--hold-seconds", "120"});
  auto anon =
      StartWorkload({BuiltBinary("tests/apq-hold-anon"), "--mib", std::to_string(kAnonMiB), "--hold-seconds", "120"});
  auto maps = StartWorkload({BuiltBinary("tests/apq-hold-maps"), "--maps", "8", "--entries", "500", "--value-size",
                             "4096", "--hold-seconds", "120"});
  ASSERT_FALSE(HasFailure()) << "a workload did not start";
  // A written file: page cache (or shmem where /tmp is a tmpfs), by this process.
  char file_template[] = "/tmp/apq-class-XXXXXX";
  int fd = mkstemp(file_template);
  ASSERT_GE(fd, 0);
  std::vector<char> chunk(1 << 20, 'y');
  for (uint64_t written = 0; written < kFileBytes; written += chunk.size()) {
    ASSERT_EQ(write(fd, chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
  }
  nlohmann::json report;
  ASSERT_NO_FATAL_FAILURE(FinalReport(*agent, 120, &report));
  close(fd);
  unlink(file_template);
  ASSERT_EQ(report["request"]["class_filter"], "CLASS_FILTER_ALL");

  EXPECT_EQ(ClassBytesOfProcess(report, pipes->pid(), "hidden", OnPipeWritePath), kPipes * kMiB);
  EXPECT_EQ(BytesOfProcess(report, pipes->pid(), OnPipeWritePath), kPipes * kMiB);
  // Pipe rings are large kmallocs, which Slab counts.
  EXPECT_EQ(
      ClassBytesOfProcess(report, pipes->pid(), "slab", [](const auto& p) { return OnPath(p, "pipe_resize_ring"); }),
      kPipes * kPipeRingBytes);

  // Unread socket data: in page frags of the sender (one frag partly filled at most per connection).
  const double sent = std::stod(sockets->Stdout().substr(sockets->Stdout().rfind(' ') + 1));
  auto on_send_path = [](const auto& p) { return OnPath(p, "tcp_sendmsg") || OnPath(p, "tcp_sendmsg_locked"); };
  const double socket_hidden = ClassBytesOfProcess(report, sockets->pid(), "hidden", on_send_path);
  EXPECT_GE(socket_hidden, sent) << PathsOfProcess(report, sockets->pid());
  EXPECT_LE(socket_hidden, sent + kConnections * 32768.0);

  const double anon_bytes = ClassBytesOfProcess(report, anon->pid(), "anon", OnAnonymousFaultPath);
  EXPECT_GE(anon_bytes, kAnonMiB * kMiB) << PathsOfProcess(report, anon->pid());
  EXPECT_EQ(ClassBytesOfProcess(report, anon->pid(), "hidden", OnAnonymousFaultPath), 0);

  double file_visible = 0, file_hidden = 0;
  auto on_write = [](const auto& p) { return OnPath(p, "vfs_write") || OnPath(p, "ksys_write"); };
  for (const char* visible : {"file", "anon", "unevictable"}) {
    file_visible += ClassBytesOfProcess(report, getpid(), visible, on_write);
  }
  file_hidden = ClassBytesOfProcess(report, getpid(), "hidden", on_write);
  EXPECT_GE(file_visible, static_cast<double>(kFileBytes)) << PathsOfProcess(report, getpid());
  EXPECT_EQ(file_hidden, 0) << PathsOfProcess(report, getpid());

  auto on_map_path = [](const auto& p) { return OnPath(p, "bpf_map_area_alloc") || OnPath(p, "__bpf_map_area_alloc"); };
  EXPECT_GT(ClassBytesOfProcess(report, maps->pid(), "vmalloc", on_map_path), 0) << PathsOfProcess(report, maps->pid());
  EXPECT_EQ(ClassBytesOfProcess(report, maps->pid(), "hidden", on_map_path), 0) << PathsOfProcess(report, maps->pid());
  EXPECT_EQ(JsonNumber(report["memory"]["free_pages_still_owned"]), 0);
  ExpectNothingLostSilently(report);
}

// The json report line `index` (0: the first) of a local agent, or null.
nlohmann::json ReportLine(const Subprocess& agent, size_t index) {
  const std::vector<std::string> lines = absl::StrSplit(agent.Stdout(), '\n', absl::SkipEmpty());
  if (index >= lines.size()) return nlohmann::json();
  return nlohmann::json::parse(lines[index], nullptr, /*allow_exceptions=*/false);
}

size_t ReportLines(const Subprocess& agent) {
  const std::string out = agent.Stdout();
  return static_cast<size_t>(std::count(out.begin(), out.end(), '\n'));
}

// What a person sees first: the default view is hidden pages only. Loads
// started after tracing: pipe buffers (hidden), empty pipes' rings (large
// kmallocs: Slab), anonymous memory, and a file written by dd (page cache,
// or shmem/ramfs where /tmp is one). Within two report intervals of the
// loads being in place, the view holds the pipes (to the byte, exact mode)
// and none of the others' bytes, in either mode.
class DefaultViewTest : public AgentRootTest, public ::testing::WithParamInterface<uint64_t> {};

TEST_P(DefaultViewTest, HoldsTheHiddenLoadAndNoneOfTheOthersWithinTwoIntervals) {
  const uint64_t sample_bytes = GetParam();
  constexpr int kPipes = 16, kRings = 64;
  std::string ready;
  Subprocess agent(
      WithReadyFile(std::vector<std::string>{BuiltBinary("agent/apq-agent"), "--local", "--format", "json", "--top",
                                             "0", "--interval", "2", "--sample-bytes", std::to_string(sample_bytes)},
                    &ready));
  ASSERT_TRUE(TracingStarted(ready)) << agent.Stderr();
  auto pipes = StartPipes(kPipes, 300);
  auto rings = StartWorkload({BuiltBinary("tests/apq-hold-pipes"), "--pipes", std::to_string(kRings), "--pipe-bytes",
                              std::to_string(kMiB), "--fill-bytes", "0", "--hold-seconds", "300"});
  auto anon = StartWorkload({BuiltBinary("tests/apq-hold-anon"), "--mib", "16", "--hold-seconds", "300"});
  const std::string file = absl::StrCat("/tmp/apq-default-view-", getpid());
  Subprocess dd({"/bin/dd", "if=/dev/zero", "of=" + file, "bs=1048576", "count=16"});
  ASSERT_EQ(dd.Wait(60), 0) << dd.Stderr();
  ASSERT_FALSE(HasFailure()) << "a workload did not start";
  // The first line after now may be of a snapshot taken before the loads
  // were in place; the two after it are within two intervals of them.
  const size_t first = ReportLines(agent) + 1;
  const bool reported = WaitForReports(agent, 3, 120);
  agent.Signal(SIGTERM);
  agent.Wait(60);
  std::filesystem::remove(file);
  ASSERT_TRUE(reported) << "the agent stopped reporting: " << agent.Stderr();
  // A process's own page tables are not the loads' bytes (IsPageTableAllocation).
  auto of_the_load = [](const nlohmann::json& p) {
    const std::vector<std::string> frames = FramesOf(p);
    return std::none_of(frames.begin(), frames.end(), IsPageTableAllocation);
  };
  for (size_t line = first; line <= first + 1; ++line) {
    const nlohmann::json report = ReportLine(agent, line);
    ASSERT_TRUE(report.is_object() && report.contains("top")) << "report " << line;
    SCOPED_TRACE(
        absl::StrCat("report line ", line, ", sample bytes ", sample_bytes, ", losses ", report["losses"].dump()));
    EXPECT_EQ(report["request"]["class_filter"], "CLASS_FILTER_HIDDEN");
    // None of the other loads' bytes. A page whose free a skipped run missed
    // stays owned, and shows no flag once on a per-CPU free list: such pages
    // (a counted loss) may stray into the view, a page per skipped run at
    // most; a load shown in the wrong class would be megabytes.
    const double stray =
        BytesOfProcess(report, rings->pid(), of_the_load) + BytesOfProcess(report, anon->pid(), of_the_load) +
        BytesOfProcess(report, dd.pid(), of_the_load) +
        BytesOfProcess(report, pipes->pid(), [&](const auto& p) { return of_the_load(p) && !OnPipeWritePath(p); });
    const int64_t misses = static_cast<int64_t>(JsonNumber(report["losses"]["recursion_misses"]));
    EXPECT_LE(stray, static_cast<double>(std::max<int64_t>(misses, 0)) * 4096)
        << PathsOfProcess(report, rings->pid()) << PathsOfProcess(report, anon->pid())
        << PathsOfProcess(report, dd.pid()) << PathsOfProcess(report, pipes->pid());
    if (stray > 0) {
      std::printf("%.0f bytes of the other loads in the hidden view, %ld skipped runs:\n%s%s%s%s", stray, misses,
                  PathsOfProcess(report, rings->pid()).c_str(), PathsOfProcess(report, anon->pid()).c_str(),
                  PathsOfProcess(report, dd.pid()).c_str(), PathsOfProcess(report, pipes->pid()).c_str());
    }
    const double pipe_bytes = BytesOfProcess(report, pipes->pid(), OnPipeWritePath);
    if (sample_bytes == 0) {
      EXPECT_EQ(pipe_bytes, kPipes * kMiB);
    } else {
      EXPECT_NEAR(pipe_bytes, kPipes * kMiB, 4 * std::sqrt(PipesTrueVariance(kPipes, sample_bytes)));
    }
    // Every row shows its hidden bytes, nothing else: pages of no known class are counted apart.
    for (const auto& path : PathsOf(report)) {
      const double shown = ClassBytes(path["classes"], "hidden");
      EXPECT_DOUBLE_EQ(path["bytes_outstanding"].get<double>(), shown) << path.dump();
      EXPECT_GT(shown, 0) << path.dump();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, DefaultViewTest, ::testing::Values(0, 524288),
                         [](const ::testing::TestParamInfo<uint64_t>& mode) {
                           return mode.param == 0 ? std::string("Exact") : std::string("Sampled");
                         });

// In sampled mode a path's split by class is an estimate like its total:
// the pipe path's hidden bytes are the path's estimate, within its error.
TEST_F(AgentRootTest, SampledReportClassifiesItsEstimates) {
  constexpr int kPipes = 300;
  auto agent = StartAgent({"--interval", "1", "--sample-bytes", "524288", "--class", "hidden"});
  auto pipes = StartPipes(kPipes, 300);
  nlohmann::json report;
  ASSERT_NO_FATAL_FAILURE(FinalReport(*agent, 120, &report));
  ASSERT_EQ(report["mode"], "sampled");
  double hidden = 0, variance = 0;
  for (const auto& path : PathsOf(report)) {
    if (!OnPipeWritePath(path)) continue;
    EXPECT_EQ(path["classes"].size(), 1u) << path["classes"].dump();
    EXPECT_DOUBLE_EQ(ClassBytes(path["classes"], "hidden"), path["bytes_outstanding"].get<double>());
    variance += std::pow(path["standard_error"].get<double>(), 2);
    hidden += ClassBytesOfProcess(report, pipes->pid(), "hidden", [&](const auto& p) { return &p == &path; });
  }
  EXPECT_GT(variance, 0);
  const double true_variance = PipesTrueVariance(kPipes, 524288);
  EXPECT_NEAR(hidden, kPipes * kMiB, 4 * std::sqrt(true_variance));
}

// The memory cgroup of a process, as /proc/PID/cgroup names it: the v1
// memory hierarchy's line on hybrid systems, else the cgroup2 line.
std::string MemoryCgroupOf(pid_t pid) {
  std::ifstream cgroups("/proc/" + std::to_string(pid) + "/cgroup");
  std::string v2, v1;
  for (std::string line; std::getline(cgroups, line);) {
    if (line.rfind("0::", 0) == 0) v2 = line.substr(3);
    size_t memory = line.find(":memory:");
    if (memory != std::string::npos) v1 = line.substr(memory + 8);
  }
  return v1.empty() ? v2 : v1;
}

// Pipe buffers filled before the agent starts cannot be put on a path, but
// the census at start puts them in the memory cgroup they are charged to.
TEST_F(AgentRootTest, HeldBeforeTracingIsAttributedToItsMemoryCgroup) {
  constexpr int kPipes = 32;
  auto pipes = StartPipes(kPipes, 300);
  const std::string memcg = MemoryCgroupOf(pipes->pid());
  if (memcg == "/" || memcg.empty()) {
    GTEST_SKIP() << "premise does not hold: the workload runs in the root memory cgroup, whose pages are not charged";
  }
  auto agent = StartAgent({"--interval", "1"});
  nlohmann::json report;
  ASSERT_NO_FATAL_FAILURE(FinalReport(*agent, 120, &report));
  const auto& by_cgroup = report["in_use_at_start"]["unflagged_by_cgroup"];
  if (!by_cgroup.contains(memcg)) {
    // Kernel memory (pipe buffers among it) is charged to cgroups only with
    // kmem accounting on; a cgroup2 memory.stat then shows slab bytes.
    std::ifstream stat("/sys/fs/cgroup" + memcg + "/memory.stat");
    std::string field;
    uint64_t value = 0, slab = 0;
    while (stat >> field >> value) {
      if (field == "slab") slab = value;
    }
    if (stat.eof() && slab == 0) {
      GTEST_SKIP() << "this kernel charges no kernel memory to cgroups (memory.stat of " << memcg
                   << " has no slab): openEuler turns kmem accounting off unless booted with cgroup.memory=kmem";
    }
  }
  ASSERT_TRUE(by_cgroup.contains(memcg)) << memcg << " not in " << by_cgroup.dump();
  // Its pipe buffers, with whatever else that cgroup held unflagged.
  EXPECT_GE(JsonNumber(by_cgroup[memcg]), kPipes * kMiB) << by_cgroup.dump();
  EXPECT_EQ(BytesOfProcess(report, pipes->pid(), OnPipeWritePath), 0) << "allocated before tracing: no path";
}

// Pipes and unread loopback TCP data held before the agent starts: one walk
// of every task's open files at start (a BPF task_file iterator) finds the
// processes holding them, the pipes to the byte and each once.
TEST_F(AgentRootTest, PipesAndSocketsHeldBeforeTracingAreFoundWithTheirProcesses) {
  constexpr int kPipes = 16, kConnections = 2;
  constexpr uint64_t kBytesPerConnection = 4 * kMiB;
  auto pipes = StartPipes(kPipes, 300);
  auto sockets = StartWorkload({BuiltBinary("tests/apq-hold-sockets"), "--connections", std::to_string(kConnections),
                                "--bytes", std::to_string(kBytesPerConnection), "--hold-seconds", "120"});
  auto agent = StartAgent({"--interval", "1"});
  nlohmann::json report;
  ASSERT_NO_FATAL_FAILURE(FinalReport(*agent, 120, &report));
  ASSERT_TRUE(report.contains("memory")) << "the final report was not classified";
  const nlohmann::json& at_start = report["memory"];
  if (!at_start["held_at_start_holders_unavailable"].get<std::string>().empty()) {
    const std::string why = at_start["held_at_start_holders_unavailable"].get<std::string>();
    if (why.find("refuses tracing programs") != std::string::npos) {
      GTEST_SKIP() << "this kernel cannot run BPF iterators, as the report says: " << why;
    }
    FAIL() << "holders at start not found: " << why;
  }
  uint64_t pipe_bytes = 0, pipe_objects = 0, socket_bytes = 0;
  for (const auto& holder : at_start["held_at_start_holders"]) {
    const pid_t tgid = holder["tgid"].get<pid_t>();
    if (tgid == pipes->pid() && holder["kind"] == "pipe buffers") {
      pipe_bytes += static_cast<uint64_t>(JsonNumber(holder["bytes"]));
      pipe_objects += holder["objects"].get<uint64_t>();
    }
    if (tgid == sockets->pid() && holder["kind"] == "socket queues")
      socket_bytes += static_cast<uint64_t>(JsonNumber(holder["bytes"]));
  }
  EXPECT_EQ(pipe_bytes, kPipes * kMiB) << at_start["held_at_start_holders"].dump();
  EXPECT_EQ(pipe_objects, static_cast<uint64_t>(kPipes));
  // Queued skbs count their truesize: the data sent (as much as the
  // connections took, which the workload prints) and the buffers' overhead.
  const auto sent = static_cast<uint64_t>(std::stod(sockets->Stdout().substr(sockets->Stdout().rfind(' ') + 1)));
  EXPECT_GT(sent, 0u);
  EXPECT_GE(socket_bytes, sent) << at_start["held_at_start_holders"].dump();
  EXPECT_LE(socket_bytes, sent + sent / 2) << at_start["held_at_start_holders"].dump();
  std::printf("held at start: pipes %.1f MiB in %d, sockets %.2f MiB for %.1f MiB sent\n",
              static_cast<double>(pipe_bytes) / kMiB, static_cast<int>(pipe_objects),
              static_cast<double>(socket_bytes) / kMiB, static_cast<double>(sent) / kMiB);
}

// apq-agent --local --explain: a hidden load of X bytes shows in the hidden,
// traced term on its path to the byte, and the equation's terms add up.
TEST_F(AgentRootTest, ExplainAccountsForAHiddenLoad) {
  constexpr int kPipes = 64;
  std::string ready;
  Subprocess agent(WithReadyFile(std::vector<std::string>{BuiltBinary("agent/apq-agent"), "--local", "--explain",
                                                          "--format", "json", "--duration", "3600"},
                                 &ready));
  ASSERT_TRUE(TracingStarted(ready)) << agent.Stderr();
  auto pipes = StartPipes(kPipes, 300);
  nlohmann::json explained;
  agent.Signal(SIGTERM);
  ASSERT_EQ(agent.Wait(120), 0) << agent.Stderr();
  explained = nlohmann::json::parse(agent.Stdout(), nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(explained.is_object()) << agent.Stdout().substr(0, 2000);
  double pipe_bytes = 0;
  for (const auto& path : explained["paths"]) {  // apq.v1.ExplainedPath: frames, root first
    const std::vector<std::string> frames = path["frames"].get<std::vector<std::string>>();
    if (std::find_if(frames.begin(), frames.end(), [](const std::string& f) {
          return f == "anon_pipe_write" || f == "pipe_write";
        }) == frames.end()) {
      continue;
    }
    for (const auto& process : path["processes"]) {
      if (process["tgid"].get<pid_t>() == pipes->pid()) pipe_bytes += process["bytes"].get<double>();
    }
  }
  EXPECT_EQ(pipe_bytes, kPipes * kMiB);
  const double total = JsonNumber(explained["mem_total_bytes"]), free = JsonNumber(explained["mem_free_bytes"]);
  const double visible = JsonNumber(explained["visible_bytes"]);
  const double traced = explained["hidden_traced_bytes"].get<double>();
  const double untraced = explained["hidden_untraced_bytes"].get<double>();
  EXPECT_GE(traced, kPipes * kMiB);
  EXPECT_DOUBLE_EQ(free + visible + traced + untraced, total);
  double visible_sum = 0;
  for (const auto& [field, bytes] : explained["visible"].items()) visible_sum += JsonNumber(bytes);
  EXPECT_DOUBLE_EQ(visible_sum, visible);
  ASSERT_EQ(explained["hidden_untraced_parts"].size(), 2u);
  // What no term explains stays small: measured at 0.1% of MemTotal here (docs/tracker.md).
  const double rest = explained["hidden_untraced_parts"][1]["bytes"].get<double>();
  EXPECT_LT(std::fabs(rest), 0.05 * total) << agent.Stdout();
  std::printf(
      "explain: MemTotal %.1f MiB, hidden traced %.1f MiB, not traced %.1f MiB, of which held at start %.1f MiB "
      "and unexplained %.1f MiB (%.2f%% of MemTotal)\n",
      total / kMiB, traced / kMiB, untraced / kMiB, explained["hidden_untraced_parts"][0]["bytes"].get<double>() / kMiB,
      rest / kMiB, 100 * rest / total);
}

TEST_F(AgentRootTest, BadFlagsGetOneLineAndExitTwo) {
  for (std::vector<std::string> flags : {std::vector<std::string>{"--local", "--format", "xml"},
                                         {"--local", "--interval", "0"},
                                         {"--local", "--sample-bytes", "-5"},
                                         {"--aggregator", "127.0.0.1:7070"},
                                         {"--local", "--aggregator", "127.0.0.1:7070"},
                                         {"--local", "--top", "-3"},
                                         {"--local", "--max-owners", "1"},
                                         {"--local", "--class", "some"},
                                         {"--local", "--explain", "--format", "folded"},
                                         {}}) {
    flags.insert(flags.begin(), BuiltBinary("agent/apq-agent"));
    Subprocess agent(flags);
    EXPECT_EQ(agent.Wait(30), 2) << flags[1];
    std::string err = agent.Stderr();
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_THAT(err, HasSubstr("apq-agent: "));
  }
}

TEST_F(AgentRootTest, UnprivilegedUserIsToldWhatIsMissing) {
  // setpriv drops to nobody with no capabilities.
  Subprocess agent({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                    BuiltBinary("agent/apq-agent"), "--local", "--duration", "1"});
  EXPECT_EQ(agent.Wait(30), 1);
  std::string err = agent.Stderr();
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_THAT(err, HasSubstr("needs root"));
}

}  // namespace
// Whether every thread of pid holds exactly `capabilities`, waiting up to 60 s.
bool AllThreadsHoldOnly(pid_t pid, uint64_t capabilities, std::string* seen) {
  for (int i = 0; i < 600; ++i) {
    const std::vector<uint64_t> threads = ThreadCapabilities(pid);
    if (!threads.empty() &&
        std::all_of(threads.begin(), threads.end(), [&](uint64_t c) { return c == capabilities; })) {
      return true;
    }
    *seen = absl::StrJoin(threads, " ", [](std::string* out, uint64_t c) { absl::StrAppend(out, absl::Hex(c)); });
    usleep(100'000);
  }
  return false;
}

// Least privilege: once tracing runs, the agent keeps CAP_BPF alone (what
// its map reads need on kernels before 6.5), and its reports still come
// (the workload's pipes, read through those maps, to the byte).
TEST_F(AgentRootTest, AgentKeepsOnlyCapBpfWhileTracing) {
  auto agent = StartAgent({"--interval", "1"});
  std::string seen;
  EXPECT_TRUE(AllThreadsHoldOnly(agent->pid(), uint64_t{1} << CAP_BPF, &seen)) << "threads hold " << seen;
  auto workload = StartPipes(8, 600);
  nlohmann::json report;
  ASSERT_NO_FATAL_FAILURE(FinalReport(*agent, 60, &report));
  ExpectNothingLostSilently(report);
  EXPECT_EQ(BytesOfProcess(report, workload->pid(), OnPipeWritePath), 8.0 * kMiB);
  EXPECT_EQ(ClassBytesOfProcess(report, workload->pid(), "hidden", OnPipeWritePath), 8.0 * kMiB)
      << "classification reads /proc/kpageflags as its owner, without capabilities";
}

}  // namespace apq
