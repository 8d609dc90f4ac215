// apq's commands: each builds its request from the flags, asks the
// aggregator, and prints the answer (cli/main.cc is only the entry point).
#include "cli/commands.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "apq/v1/apq.grpc.pb.h"
#include "common/client_tls_flags.h"
#include "common/explanation.h"
#include "common/grpc_status.h"
#include "common/help.h"
#include "common/page_classes.h"
#include "common/pprof.h"
#include "common/proto_json.h"
#include "common/requests.h"
#include "common/status_macros.h"
#include "common/table_flags.h"
#include "common/tables.h"
#include "common/top_profile.h"
#include "common/wire_limits.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, aggregator, "127.0.0.1:7070", "The aggregator, HOST:PORT.");
ABSL_FLAG(std::string, cluster, "", "The cluster to ask about.");
ABSL_FLAG(std::string, by, "stack",
          "top: group by stack, function, host, process, cgroup or build; explain: host for one explanation per host "
          "(default: summed over the hosts).");
ABSL_FLAG(int64_t, top, 20, "top: entries shown; explain: paths per explanation (0: all).");
ABSL_FLAG(std::string, class, "",
          "top: which pages, by how /proc/meminfo counts them: hidden (counted by no field; the default for the fleet "
          "now), visible, or all (the default, and the only choice, with --at or --since: history keeps every class "
          "together).");
ABSL_FLAG(std::string, format, "table",
          "table, json, or with top --by stack: folded (flame-graph input) or pprof (a gzipped profile.proto of the "
          "fleet now, for go tool pprof: inuse_space by class and alloc_space since the agents started).");
ABSL_FLAG(std::string, host, "", "top, explain: only this host.");
ABSL_FLAG(std::string, build, "", "top: only hosts of this kernel build ID (hex).");
ABSL_FLAG(std::string, frame, "", "top: only paths with a function containing this text.");
ABSL_FLAG(uint32_t, pid, 0, "top: only pages taken by this process ID (now only; with --host, that host's process).");
ABSL_FLAG(double, interval, 0,
          "top (table or json): ask again every this many seconds, until interrupted: on a terminal a live view "
          "redrawn in place, into a pipe a log (0: once).");
ABSL_FLAG(bool, processes, false,
          "top: under each group, the processes holding its bytes (now only; in pprof, process, pid and cgroup "
          "labels).");
ABSL_FLAG(std::string, at, "",
          "top: the fleet as it was then (history): RFC 3339 (2026-11-25T03:00:00Z) or a "
          "time ago (90m, 6h).");
ABSL_FLAG(std::string, since, "", "top: each group's peak from then until --at (or now), same formats.");
ABSL_FLAG(std::string, before, "",
          "diff: the history to compare against: parts joined by commas, all of which must hold: a time (at that "
          "time) or FROM..TO (RFC 3339, or a time ago: 2h..1h), build=HEX (a prefix), release=UNAME_R, host=NAME.");
ABSL_FLAG(std::string, after, "", "diff: the history compared, as --before (left out, or no time: the newest sample).");
ABSL_FLAG(double, timeout, 30, "Seconds to wait for the aggregator.");

namespace {

// The flags as the shared request builders (common/requests.h) take them.
apq::RequestParams FlagParams() {
  return {{"cluster", absl::GetFlag(FLAGS_cluster)},
          {"by", absl::GetFlag(FLAGS_by)},
          {"class", absl::GetFlag(FLAGS_class)},
          {"top", absl::StrCat(absl::GetFlag(FLAGS_top))},
          {"host", absl::GetFlag(FLAGS_host)},
          {"build", absl::GetFlag(FLAGS_build)},
          {"frame", absl::GetFlag(FLAGS_frame)},
          {"pid", absl::StrCat(absl::GetFlag(FLAGS_pid))},
          {"processes", absl::GetFlag(FLAGS_processes) ? "true" : "false"},
          {"at", absl::GetFlag(FLAGS_at)},
          {"since", absl::GetFlag(FLAGS_since)},
          {"before", absl::GetFlag(FLAGS_before)},
          {"after", absl::GetFlag(FLAGS_after)}};
}

// One query to the aggregator, within --timeout; an error names the
// aggregator and what was asked.
template <typename Request, typename Response>
absl::Status Ask(grpc::Status (apq::v1::Query::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                 apq::v1::Query::Stub* stub, const Request& request, Response* response, const char* what) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(absl::GetFlag(FLAGS_timeout) * 1000)));
  return apq::FromGrpc((stub->*method)(&context, request, response),
                       absl::StrCat(what, " from ", absl::GetFlag(FLAGS_aggregator)));
}

// The fleet's paths as a pprof profile (common/top_profile.h).
absl::Status PrintProfile(const apq::v1::TopRequest& request, const apq::v1::TopResponse& response) {
  std::vector<std::pair<std::string, std::string>> labels;
  if (!request.host().empty()) labels.emplace_back("host", request.host());
  apq::MemoryProfile profile = apq::ProfileOfTop(
      response, request.class_filter(), labels,
      {absl::StrCat("apq top --cluster ", request.cluster(), ": ", response.hosts_selected(), " hosts"),
       absl::StrCat("pages: ", apq::ClassFilterName(request.class_filter())),
       "objects are 4 KiB pages; allocations since each agent started"});
  profile.time_nanos = absl::ToUnixNanos(absl::Now());
  if (!request.build_id().empty()) profile.build_ids["vmlinux"] = absl::BytesToHexString(request.build_id());
  return apq::WriteProfile(profile);
}

// One answer to apq top, printed.
absl::Status PrintTop(apq::v1::Query::Stub* stub, const apq::v1::TopRequest& request, const std::string& format) {
  apq::v1::TopResponse response;
  APQ_RETURN_IF_ERROR(Ask(&apq::v1::Query::Stub::Top, stub, request, &response, "top"));
  if (format == "pprof") {
    std::cerr << apq::SymbolsPending(response);
    return PrintProfile(request, response);
  }
  if (format == "json") {
    APQ_ASSIGN_OR_RETURN(const std::string json, apq::ProtoJson(response));
    std::cout << json << "\n";
  } else if (format == "folded") {
    std::cerr << apq::SymbolsPending(response);
    std::cout << apq::FoldedOfTop(response);
  } else {
    std::cout << apq::LiveViewRedraw()
              << apq::FormatTopTable(request, response, absl::GetFlag(FLAGS_by), apq::TableStyleFromFlags());
  }
  std::cout << std::flush;
  return absl::OkStatus();
}

absl::Status RunTop(apq::v1::Query::Stub* stub, const std::string& format) {
  APQ_ASSIGN_OR_RETURN(apq::v1::TopRequest request, apq::TopRequestOf(FlagParams(), absl::Now()));
  const bool every_path = format == "folded" || format == "pprof";  // flame-graph and profiler input
  if (every_path && request.group_by() != apq::v1::GROUP_BY_STACK) {
    return absl::InvalidArgumentError(absl::StrCat("--format ", format, " needs --by stack"));
  }
  const double interval = absl::GetFlag(FLAGS_interval);
  if (!(interval == 0 || (interval >= 0.5 && interval <= 86400))) {
    return absl::InvalidArgumentError("--interval must be 0 (once) or between 0.5 and 86400 seconds");
  }
  if (interval > 0 && every_path) return absl::InvalidArgumentError("--interval prints table or json");
  if (every_path) request.set_top(0);
  request.set_with_allocated(format == "pprof");
  APQ_RETURN_IF_ERROR(PrintTop(stub, request, format));
  // The live view: the same question again (history answers do not change).
  while (interval > 0) {
    absl::SleepFor(absl::Seconds(interval));
    APQ_RETURN_IF_ERROR(PrintTop(stub, request, format));
  }
  return absl::OkStatus();
}

absl::Status RunHosts(apq::v1::Query::Stub* stub, const std::string& format) {
  apq::v1::HostsRequest request;
  request.set_cluster(absl::GetFlag(FLAGS_cluster));
  apq::v1::HostsResponse response;
  APQ_RETURN_IF_ERROR(Ask(&apq::v1::Query::Stub::Hosts, stub, request, &response, "hosts"));
  if (format == "json") {
    APQ_ASSIGN_OR_RETURN(const std::string json, apq::ProtoJson(response));
    std::cout << json << "\n";
    return absl::OkStatus();
  }
  std::cout << apq::FormatHostsTable(response, absl::Now());
  return absl::OkStatus();
}

absl::Status RunClusters(apq::v1::Query::Stub* stub, const std::string& format) {
  apq::v1::ClustersResponse response;
  APQ_RETURN_IF_ERROR(Ask(&apq::v1::Query::Stub::Clusters, stub, apq::v1::ClustersRequest(), &response, "clusters"));
  if (format == "json") {
    APQ_ASSIGN_OR_RETURN(const std::string json, apq::ProtoJson(response));
    std::cout << json << "\n";
  } else {
    std::cout << apq::FormatClustersTable(response, absl::Now());
  }
  return absl::OkStatus();
}

absl::Status RunExplain(apq::v1::Query::Stub* stub, const std::string& format) {
  APQ_ASSIGN_OR_RETURN(const apq::v1::ExplainRequest request, apq::ExplainRequestOf(FlagParams()));
  apq::v1::ExplainResponse response;
  APQ_RETURN_IF_ERROR(Ask(&apq::v1::Query::Stub::Explain, stub, request, &response, "explain"));
  if (response.explanations().empty()) {
    return absl::NotFoundError(
        "no host of the selection has classified its pages yet (agents classify every "
        "--classify-interval seconds)");
  }
  // json: one object per explanation, a line each.
  for (const apq::v1::Explanation& explanation : response.explanations()) {
    if (format == "json") {
      APQ_ASSIGN_OR_RETURN(const std::string json, apq::ProtoJson(explanation));
      std::cout << json << "\n";
    } else {
      std::cout << apq::FormatExplanationTable(explanation) << "\n";
    }
  }
  return absl::OkStatus();
}

absl::Status RunDiff(apq::v1::Query::Stub* stub, const std::string& format) {
  APQ_ASSIGN_OR_RETURN(apq::v1::DiffRequest request, apq::DiffRequestOf(FlagParams(), absl::Now()));
  if (format == "folded" && request.group_by() != apq::v1::GROUP_BY_STACK) {
    return absl::InvalidArgumentError("--format folded needs --by stack");
  }
  if (format == "folded") request.set_top(0);
  apq::v1::DiffResponse response;
  APQ_RETURN_IF_ERROR(Ask(&apq::v1::Query::Stub::Diff, stub, request, &response, "diff"));
  if (format == "json") {
    APQ_ASSIGN_OR_RETURN(const std::string json, apq::ProtoJson(response));
    std::cout << json << "\n";
  } else if (format == "folded") {
    // The differential folded form (flame-graph diff tools): stack, bytes
    // per host before, bytes per host after.
    for (const apq::v1::DiffEntry& e : response.entries()) {
      std::cout << e.key() << " " << std::llround(e.before_bytes_per_host()) << " "
                << std::llround(e.after_bytes_per_host()) << "\n";
    }
  } else {
    std::cout << apq::FormatDiffTable(request, response, absl::GetFlag(FLAGS_by), apq::TableStyleFromFlags());
  }
  return absl::OkStatus();
}

absl::Status Run(const std::vector<std::string>& positional) {
  const std::vector<std::string> commands = {"top", "explain", "diff", "hosts", "clusters"};
  if (positional.size() != 2 || std::find(commands.begin(), commands.end(), positional[1]) == commands.end()) {
    return absl::InvalidArgumentError(
        "usage: apq top|explain|diff|hosts --cluster NAME [--aggregator HOST:PORT] ..., or apq clusters (apq --help "
        "says more)");
  }
  const bool of_a_cluster = positional[1] != "clusters";
  if (of_a_cluster && absl::GetFlag(FLAGS_cluster).empty()) {
    return absl::InvalidArgumentError("--cluster is required (apq clusters lists them)");
  }
  std::string format = absl::GetFlag(FLAGS_format);
  const bool paths = positional[1] == "top" || positional[1] == "diff";  // folded stacks to print
  if (format != "table" && format != "json" && (format != "folded" || !paths) &&
      (format != "pprof" || positional[1] != "top")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--format must be table, json, (top, diff) folded or (top) pprof, not '", format, "'"));
  }
  double timeout = absl::GetFlag(FLAGS_timeout);
  if (!(timeout > 0 && timeout < 3600)) return absl::InvalidArgumentError("--timeout must be in (0, 3600)");
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(apq::kMaxMessageBytes);
  APQ_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                       apq::ChannelTo(absl::GetFlag(FLAGS_aggregator), apq::ClientTlsFromFlags(), arguments));
  auto stub = apq::v1::Query::NewStub(channel);
  if (positional[1] == "top") return RunTop(stub.get(), format);
  if (positional[1] == "explain") return RunExplain(stub.get(), format);
  if (positional[1] == "diff") return RunDiff(stub.get(), format);
  if (positional[1] == "clusters") return RunClusters(stub.get(), format);
  return RunHosts(stub.get(), format);
}

}  // namespace

namespace apq {

const ProgramHelp& ApqHelp() {
  static const ProgramHelp* const help = new ProgramHelp{
      "apq",
      "which kernel call paths hold a fleet's page-allocator memory, which of it /proc/meminfo cannot explain, and "
      "what changed between kernel builds; asks apq-aggregator.",
      {{"top",
        "apq top --cluster NAME [--by stack|function|host|process|cgroup|build] [--class hidden|visible|all] "
        "[--at WHEN] [--since WHEN] [--pid PID] [--processes] [--top N] [--interval S] "
        "[--format table|json|folded|pprof] [--bytes] [--wide]",
        "The groups holding the most outstanding bytes: the fleet now, as it was --at a time, or each group's peak "
        "--since a time.",
        {"by", "class", "top", "host", "build", "frame", "pid", "processes", "at", "since", "interval", "format",
         "bytes", "wide"}},
       {"explain",
        "apq explain --cluster NAME [--host NAME] [--by host] [--top N] [--format table|json]",
        "Each host's /proc/meminfo reconciled with its traced pages: MemTotal = MemFree + visible fields + hidden "
        "traced (by path) + hidden not traced.",
        {"host", "by", "top", "format"}},
       {"diff",
        "apq diff --cluster NAME --before SELECTOR --after SELECTOR [--by stack|function|host|build] [--top N] "
        "[--format table|json|folded] [--bytes] [--wide]",
        "Two selections of history compared group by group, in bytes per host of each side: what a kernel upgrade, "
        "or the time between, changed.",
        {"before", "after", "by", "top", "format", "bytes", "wide"}},
       {"hosts",
        "apq hosts --cluster NAME [--format table|json]",
        "The cluster's hosts: kernel release and build, last report, last classification, losses.",
        {"format"}},
       {"clusters",
        "apq clusters [--format table|json]",
        "The clusters the aggregator holds (those you may read): hosts, hosts reporting now, newest report.",
        {"format"}}},
      {"aggregator", "cluster", "timeout", "tls_ca", "tls_cert", "tls_key", "tls_server_name"},
      "Examples:\n"
      "  apq top --cluster prod --by function --class hidden\n"
      "  apq diff --cluster prod --before build=5f2a --after build=9c1e --by function\n"
      "  apq top --cluster prod --format folded | flamegraph.pl > prod.svg\n"
      "  apq top --cluster prod --format pprof > prod.pb.gz && go tool pprof -top prod.pb.gz\n",
      /*takes_command=*/true};
  return *help;
}

int RunApq(int argc, char** argv) { return ExitStatusOf("apq", Run(ParseFlagsOrHelp(argc, argv, ApqHelp()))); }

}  // namespace apq
