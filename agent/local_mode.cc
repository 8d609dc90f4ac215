#include "agent/local_mode.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/classifications.h"
#include "agent/code_objects.h"
#include "agent/fleet_classes.h"
#include "agent/host_of_one.h"
#include "agent/local_report.h"
#include "agent/privileges.h"
#include "agent/report.h"
#include "agent/start_holders.h"
#include "agent/stop_signals.h"
#include "common/log.h"
#include "common/build_id.h"
#include "common/explanation.h"
#include "common/files.h"
#include "common/kernel_symbols.h"
#include "common/page_census.h"
#include "common/proto_json.h"
#include "common/ready_file.h"
#include "common/status_macros.h"
#include "common/top_profile.h"

namespace apq {
namespace {

absl::Status PrintExplanation(HostOfOne& host, const LocalOptions& options, const std::string& why_unclassified) {
  apq::v1::ExplainRequest request;
  request.set_top(options.request.top());
  APQ_ASSIGN_OR_RETURN(const apq::v1::ExplainResponse response, host.Explain(request));
  // Without a classification there is no hidden term to explain with.
  if (response.explanations().empty()) {
    return absl::UnavailableError(absl::StrCat("no classification of the pages to explain with",
                                               why_unclassified.empty() ? "" : ": ", why_unclassified));
  }
  const apq::v1::Explanation& explanation = response.explanations(0);
  if (options.format == OutputFormat::kJson) {
    APQ_ASSIGN_OR_RETURN(const std::string json, ProtoJson(explanation));
    std::cout << json << "\n" << std::flush;
  } else {
    std::cout << FormatExplanationTable(explanation) << std::flush;
  }
  return absl::OkStatus();
}

absl::Status PrintProfile(const apq::v1::LocalReport& report) {
  MemoryProfile profile = ProfileOfTop(
      report.top(), report.request().class_filter(), {},
      {absl::StrCat("apq-agent --local, mode ", report.mode()),
       absl::StrCat("pages: ", ClassFilterName(report.request().class_filter())), "objects are 4 KiB pages"});
  for (const apq::v1::TopEntry& entry : report.top().entries()) {
    for (const std::string& object : entry.frame_objects()) {
      if (object.empty() || profile.build_ids.contains(object)) continue;
      const std::string id = BuildIdOfLoadedObject(object == "vmlinux" ? "" : object);
      if (!id.empty()) profile.build_ids[object] = HexBuildId(id);
    }
  }
  profile.duration_nanos = static_cast<int64_t>(report.seconds_tracing() * 1e9);
  profile.time_nanos = absl::ToUnixNanos(absl::Now());
  APQ_RETURN_IF_ERROR(WriteProfile(profile));
  std::cerr << FormatLossSummary(report) << std::flush;
  return absl::OkStatus();
}

absl::Status Print(const apq::v1::LocalReport& report, const LocalOptions& options) {
  switch (options.format) {
    case OutputFormat::kTable:
      std::cout << LiveViewRedraw() << FormatLocalTable(report, options.table_style) << std::endl;
      break;
    case OutputFormat::kJson: {
      APQ_ASSIGN_OR_RETURN(const std::string json, ProtoJson(report));
      std::cout << json << "\n" << std::flush;
      break;
    }
    case OutputFormat::kFolded:
      std::cout << FoldedOfTop(report.top()) << std::flush;
      std::cerr << FormatLossSummary(report) << std::flush;
      break;
    case OutputFormat::kPprof:
      return PrintProfile(report);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name) {
  if (name == "table") return OutputFormat::kTable;
  if (name == "json") return OutputFormat::kJson;
  if (name == "folded") return OutputFormat::kFolded;
  if (name == "pprof") return OutputFormat::kPprof;
  return absl::InvalidArgumentError(absl::StrCat("--format must be table, json, folded or pprof, not '", name, "'"));
}

absl::Status RunLocal(const LocalOptions& options) {
  StopSignals signals;
  APQ_ASSIGN_OR_RETURN(std::unique_ptr<BpfPageTracker> tracker, BpfPageTracker::Start(options.tracker));
  APQ_ASSIGN_OR_RETURN(TrackerSnapshot first, tracker->Snapshot());
  absl::StatusOr<PageCensus> census = TakePageCensus();
  if (!census.ok()) APQ_LOG() << "no census of pages in use at start: " << census.status().message();
  APQ_ASSIGN_OR_RETURN(const KernelSymbols symbols, KernelSymbols::LoadFromProc());

  APQ_LOG() << "tracing started, mode "
            << (options.tracker.sampling.exact()
                    ? "exact"
                    : absl::StrCat("sampled, --sample-bytes ", options.tracker.sampling.sample_bytes()))
            << ", hooks: " << tracker->coverage().program_type;
  APQ_RETURN_IF_ERROR(AnnounceReady(options.ready_file, {}));

  std::optional<apq::v1::StartCensus> start_census;
  if (census.ok()) {
    CgroupNames memcgs = CgroupNames::ForMemoryCgroups();
    start_census = StartCensusOf(*census, memcgs);
  }
  apq::v1::Coverage coverage;
  for (const std::string& path : tracker->coverage().hooked_paths) coverage.add_hooked(path);
  for (const std::string& path : tracker->coverage().blind_paths) coverage.add_not_visible(path);
  KallsymsFrameEncoder frames(&symbols, BuildIdOfLoadedObject);
  CgroupNames cgroups;
  APQ_ASSIGN_OR_RETURN(const std::string host_name, ThisHostName());
  HostOfOne host(
      &frames, [&frames](const std::string& object) { return frames.SymbolTableOf(object); }, host_name,
      options.tracker.sampling.sample_bytes(), [&cgroups](uint64_t id) { return cgroups.NameOf(id); });
  FleetClassifier classifier(&symbols,
                             census.ok() ? std::optional<uint64_t>(census->HiddenEstimate() * kPageSize) : std::nullopt,
                             FindStartHolders());
  // Every printed report is classified (a whole core is the budget: an
  // operator is waiting for the answer); all pages read again every 30 s.
  Classifications classifications(tracker.get(), &classifier, kDefaultFullClassifySeconds, /*cpu_share=*/1.0);
  APQ_RETURN_IF_ERROR(DropCapabilitiesAfterStart());

  const double first_seconds = first.monotonic_seconds;
  classifications.MaybeClassify(&first, /*wanted=*/false);
  APQ_RETURN_IF_ERROR(host.Add(first, LossesOf(first), coverage, first.unix_millis, nullptr));
  // A profile is written once, at the end (--duration or SIGINT/SIGTERM).
  const bool final_only = options.format == OutputFormat::kPprof ||
                          (options.duration_seconds > 0 && options.format != OutputFormat::kTable);
  apq::v1::TopRequest request = options.request;
  request.set_with_processes(true);
  request.set_with_allocated(options.format == OutputFormat::kPprof);
  if (options.format == OutputFormat::kFolded || options.format == OutputFormat::kPprof) request.set_top(0);
  double elapsed = 0;
  bool stop = false;
  while (!stop) {
    double wait = options.interval_seconds;
    if (options.duration_seconds > 0) wait = std::min(wait, options.duration_seconds - elapsed);
    stop = !signals.Sleep(std::max(wait, 0.0));
    APQ_ASSIGN_OR_RETURN(TrackerSnapshot now, tracker->Snapshot());
    elapsed = now.monotonic_seconds - first_seconds;
    if (options.duration_seconds > 0 && elapsed >= options.duration_seconds - 1e-3) stop = true;
    const bool print = stop || !final_only;
    // Classifying walks the pfn table and /proc/kpageflags: only for reports that are printed.
    const std::optional<ClassifiedPages> classified = classifications.MaybeClassify(&now, print);
    const apq::v1::Losses losses = LossesOf(now);
    APQ_RETURN_IF_ERROR(host.Add(now, losses, coverage, now.unix_millis, classified ? &*classified : nullptr));
    if (!print) continue;
    if (options.explain) {
      APQ_RETURN_IF_ERROR(PrintExplanation(host, options, classifications.last_error()));
      continue;
    }
    apq::v1::LocalReport report = LocalReportOf(now, options.tracker.sampling, elapsed);
    *report.mutable_coverage() = coverage;
    if (host.epoch().state.memory()) *report.mutable_memory() = *host.epoch().state.memory();
    if (start_census) *report.mutable_in_use_at_start() = *start_census;
    *report.mutable_request() = request;
    APQ_ASSIGN_OR_RETURN(*report.mutable_top(), host.Top(request));
    APQ_RETURN_IF_ERROR(Print(report, options));
  }
  return absl::OkStatus();
}

}  // namespace apq
