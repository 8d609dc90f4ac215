// apq-agent: attributes every page-allocator page to the kernel call path,
// process and cgroup that took it. --local prints the top paths of this host.
#include <cmath>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/fleet_mode.h"
#include "common/client_tls_flags.h"
#include "agent/local_mode.h"
#include "common/help.h"
#include "common/log.h"
#include "common/ready_file.h"
#include "common/requests.h"
#include "common/status_macros.h"
#include "common/table_flags.h"

ABSL_FLAG(bool, local, false, "Run on this host alone and print the top call paths (no aggregator).");
ABSL_FLAG(std::string, aggregator, "", "Stream to the aggregator at HOST:PORT (fleet mode).");
ABSL_FLAG(std::string, cluster, "", "Fleet mode: the cluster this host belongs to.");
ABSL_FLAG(std::string, host, "", "Fleet mode: this host's name (default: its hostname).");
ABSL_FLAG(int64_t, buffer_bytes, 64 << 20,
          "Fleet mode: memory for reports not yet acknowledged; past it, one full snapshot replaces them.");
ABSL_FLAG(double, interval, 5, "Seconds between reports.");
ABSL_FLAG(double, duration, 0,
          "Stop after this many seconds and print the final report (0: run until SIGINT/SIGTERM).");
ABSL_FLAG(int64_t, top, 20, "Call paths shown (0: all).");
ABSL_FLAG(std::string, format, "table",
          "table, json, folded (flame-graph input: 'root;...;leaf BYTES') or pprof (a gzipped profile.proto of every "
          "path, for go tool pprof, written once at the end: give --duration, or stop with SIGINT).");
ABSL_FLAG(int64_t, sample_bytes, -1,
          "Walk the stack of one allocation per N bytes on average and weight it (unbiased estimates); "
          "0 walks every allocation (exact per path). Default (-1): 0 with --local, 524288 when streaming.");
ABSL_FLAG(std::string, class, "hidden",
          "Local mode: pages shown by how /proc/meminfo counts them: hidden (no field counts them), visible, or all.");
ABSL_FLAG(uint32_t, pid, 0, "Local mode: only pages taken by this process ID.");
ABSL_FLAG(bool, explain, false,
          "Local mode: print /proc/meminfo reconciled with the hidden paths (MemTotal = MemFree + visible fields "
          "+ hidden traced + hidden not traced) instead of the top paths; table or json.");
ABSL_FLAG(double, classify_interval, apq::kDefaultFullClassifySeconds,
          "Fleet mode: pages are classified by how /proc/meminfo counts them (for apq top --class and apq explain) "
          "at every report, reading only the pages that changed; every this many seconds all of them are read "
          "again (~0.13 s of one core per 24 GiB). At most 1% of a core in all; 0: never classify.");
ABSL_FLAG(std::string, metrics, "",
          "Fleet mode: serve /metrics for Prometheus on HOST:PORT (the agent's health, its loss counters, the "
          "host's bytes by class). Off unless given.");
ABSL_FLAG(int64_t, max_owners, 1 << 18, "Capacity of the (stack, process, cgroup, order) table.");
ABSL_FLAG(int64_t, max_stacks, 1 << 15, "Capacity of the distinct-stack table.");

namespace {

// A fleet agent is always on: it samples unless told otherwise.
constexpr int64_t kFleetSampleBytes = 524288;

absl::StatusOr<apq::LocalOptions> LocalOptionsFromFlags() {
  apq::LocalOptions options;
  options.interval_seconds = absl::GetFlag(FLAGS_interval);
  options.duration_seconds = absl::GetFlag(FLAGS_duration);
  if (!std::isfinite(options.interval_seconds) || options.interval_seconds < 0.1 || options.interval_seconds > 86400) {
    return absl::InvalidArgumentError("--interval must be between 0.1 and 86400 seconds");
  }
  if (!std::isfinite(options.duration_seconds) || options.duration_seconds < 0) {
    return absl::InvalidArgumentError("--duration must be 0 or a positive number of seconds");
  }
  absl::StatusOr<apq::OutputFormat> format = apq::ParseOutputFormat(absl::GetFlag(FLAGS_format));
  if (!format.ok()) return format.status();
  options.format = *format;
  options.table_style = apq::TableStyleFromFlags();
  options.ready_file = apq::ReadyFileFromFlag();
  options.explain = absl::GetFlag(FLAGS_explain);
  if (options.explain &&
      (options.format == apq::OutputFormat::kFolded || options.format == apq::OutputFormat::kPprof)) {
    return absl::InvalidArgumentError("--explain prints table or json");
  }
  // The question apq top asks the fleet, asked of this host.
  APQ_ASSIGN_OR_RETURN(options.request, apq::TopRequestOf({{"top", absl::StrCat(absl::GetFlag(FLAGS_top))},
                                                           {"class", absl::GetFlag(FLAGS_class)},
                                                           {"pid", absl::StrCat(absl::GetFlag(FLAGS_pid))}},
                                                          absl::Now()));
  int64_t sample_bytes = absl::GetFlag(FLAGS_sample_bytes);
  if (sample_bytes < -1) return absl::InvalidArgumentError("--sample-bytes must be 0 or more");
  if (sample_bytes == -1) sample_bytes = absl::GetFlag(FLAGS_local) ? 0 : kFleetSampleBytes;
  absl::StatusOr<apq::SamplingPlan> sampling = apq::SamplingPlan::ForSampleBytes(static_cast<uint64_t>(sample_bytes));
  if (!sampling.ok()) return sampling.status();
  options.tracker.sampling = *sampling;
  int64_t max_owners = absl::GetFlag(FLAGS_max_owners), max_stacks = absl::GetFlag(FLAGS_max_stacks);
  // The aggregator holds at most 2^22 series and stacks per agent run.
  if (max_owners < 16 || max_owners > (int64_t{1} << 22))
    return absl::InvalidArgumentError("--max-owners must be in [16, 2^22]");
  if (max_stacks < 16 || max_stacks > (int64_t{1} << 22))
    return absl::InvalidArgumentError("--max-stacks must be in [16, 2^22]");
  options.tracker.max_owners = static_cast<uint32_t>(max_owners);
  options.tracker.max_stacks = static_cast<uint32_t>(max_stacks);
  return options;
}

absl::Status Run() {
  bool local = absl::GetFlag(FLAGS_local);
  std::string aggregator = absl::GetFlag(FLAGS_aggregator);
  if (local == !aggregator.empty()) {
    return absl::InvalidArgumentError("say --local to run on this host alone, or --aggregator HOST:PORT to stream");
  }
  absl::StatusOr<apq::LocalOptions> options = LocalOptionsFromFlags();
  if (!options.ok()) return options.status();
  if (local) return apq::RunLocal(*options);

  apq::FleetOptions fleet;
  fleet.aggregator = aggregator;
  fleet.tls = apq::ClientTlsFromFlags();
  fleet.cluster = absl::GetFlag(FLAGS_cluster);
  fleet.host = absl::GetFlag(FLAGS_host);
  if (fleet.cluster.empty()) return absl::InvalidArgumentError("--cluster is required with --aggregator");
  if (fleet.cluster.size() > 255 || fleet.host.size() > 255) {
    return absl::InvalidArgumentError("--cluster and --host must be at most 255 bytes");
  }
  int64_t buffer = absl::GetFlag(FLAGS_buffer_bytes);
  if (buffer < (1 << 16) || buffer > (int64_t{1} << 34)) {
    return absl::InvalidArgumentError("--buffer-bytes must be between 64 KiB and 16 GiB");
  }
  fleet.buffer_bytes = static_cast<size_t>(buffer);
  fleet.interval_seconds = options->interval_seconds;
  fleet.duration_seconds = options->duration_seconds;
  fleet.tracker = options->tracker;
  fleet.metrics_address = absl::GetFlag(FLAGS_metrics);
  fleet.ready_file = options->ready_file;
  fleet.classify_seconds = absl::GetFlag(FLAGS_classify_interval);
  if (!std::isfinite(fleet.classify_seconds) || fleet.classify_seconds < 0 || fleet.classify_seconds > 86400) {
    return absl::InvalidArgumentError("--classify-interval must be between 0 and 86400 seconds");
  }
  return apq::RunFleet(fleet);
}

const apq::ProgramHelp kHelp = {
    "apq-agent",
    "attributes every page-allocator page of this host to the kernel call path, process and cgroup that took it.",
    {{"local",
      "apq-agent --local [--duration S] [--format table|json|folded|pprof] [--class hidden|visible|all] [--pid PID] "
      "[--explain] [--bytes] [--wide]",
      "On this host alone: prints the call paths holding the most outstanding pages every --interval (and at the "
      "end), or with --explain /proc/meminfo reconciled with them. Needs root (BPF).",
      {"local", "duration", "top", "format", "class", "pid", "explain", "bytes", "wide"}},
     {"fleet",
      "apq-agent --aggregator HOST:PORT --cluster NAME [--host NAME] [--classify-interval S]",
      "Streams per-path counters to the aggregator (apq-aggregator), resending what it has not acknowledged.",
      {"aggregator", "cluster", "host", "buffer_bytes", "classify_interval", "metrics", "tls_ca", "tls_cert", "tls_key",
       "tls_server_name"}}},
    {"interval", "sample_bytes", "max_owners", "max_stacks", "ready_file"},
    "Losses (pages or events the tracker could not attribute) are counted and printed with every report, never "
    "hidden; docs/tracker.md says what each means.\n"};

}  // namespace

int main(int argc, char** argv) {
  apq::SetLogProgram("apq-agent");
  std::vector<std::string> positional = apq::ParseFlagsOrHelp(argc, argv, kHelp);
  if (positional.size() > 1) {
    APQ_LOG() << "unexpected argument '" << positional[1] << "' (apq-agent --help lists the flags)";
    return apq::kExitBadUsage;
  }
  return apq::ExitStatusOf("apq-agent", Run());
}
