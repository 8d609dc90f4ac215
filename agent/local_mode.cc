#include "agent/local_mode.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/classification_schedule.h"
#include "agent/code_objects.h"
#include "agent/explain.h"
#include "agent/privileges.h"
#include "common/explanation.h"
#include "agent/report.h"
#include "agent/start_holders.h"
#include "common/files.h"
#include "common/meminfo_balance.h"
#include "agent/stop_signals.h"
#include "common/errors.h"
#include "common/kernel_symbols.h"
#include "common/page_census.h"
#include "common/proto_json.h"
#include "common/ready_file.h"
#include "common/status_macros.h"

namespace apq {
namespace {

absl::Status PrintExplanation(const Report& report, OutputFormat format) {
  absl::StatusOr<std::string> text = ReadFileToString("/proc/meminfo");
  if (!text.ok()) return text.status();
  absl::StatusOr<absl::flat_hash_map<std::string, uint64_t>> meminfo = ParseMeminfo(*text);
  if (!meminfo.ok()) return meminfo.status();
  const double held_at_start =
      report.census_at_start ? static_cast<double>(report.census_at_start->HiddenEstimate()) * kPageSize : 0;
  absl::StatusOr<MeminfoBalance> balance =
      BalanceMeminfo(*meminfo, report.class_bytes[apq::v1::PAGE_CLASS_HIDDEN], held_at_start);
  if (!balance.ok()) return balance.status();
  const apq::v1::Explanation explanation = ExplainLocally(*balance, report);
  if (format == OutputFormat::kJson) {
    APQ_ASSIGN_OR_RETURN(const std::string json, ProtoJson(explanation));
    std::cout << json << "\n" << std::flush;
  } else {
    std::cout << FormatExplanationTable(explanation) << std::flush;
  }
  return absl::OkStatus();
}

// The census's unflagged pages charged to memory cgroups, by cgroup name,
// largest first.
std::vector<std::pair<std::string, uint64_t>> HeldAtStartByCgroup(const PageCensus& census) {
  CgroupNames memcgs = CgroupNames::ForMemoryCgroups();
  std::vector<std::pair<std::string, uint64_t>> held;
  for (const auto& [memcg, pages] : census.unflagged_pages_by_memcg) {
    held.emplace_back(memcgs.NameOf(memcg), pages * kPageSize);
  }
  std::sort(held.begin(), held.end(), [](const auto& a, const auto& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  });
  return held;
}

// Cursor home, then erase the screen (ANSI).
constexpr char kClearScreen[] = "\033[H\033[2J";

void Print(const Report& report, const LocalOptions& options) {
  switch (options.format) {
    case OutputFormat::kTable:
      // On a terminal, a live view redrawn in place (like top); into a pipe
      // or file, a plain log of one table per interval.
      if (isatty(STDOUT_FILENO)) std::cout << kClearScreen;
      std::cout << FormatTable(report, options.table_style) << std::endl;
      break;
    case OutputFormat::kJson:
      std::cout << FormatJson(report) << std::flush;
      break;
    case OutputFormat::kFolded:
      std::cout << FormatFolded(report) << std::flush;
      std::cerr << FormatLossSummary(report) << std::flush;
      break;
    case OutputFormat::kPprof:
      break;  // binary: written by PrintProfile, once
  }
}

absl::Status PrintProfile(const Report& report) {
  MemoryProfile profile = ProfileOf(report, BuildIdOfLoadedObject);
  profile.time_nanos = absl::ToUnixNanos(absl::Now());
  APQ_RETURN_IF_ERROR(WriteProfile(profile));
  std::cerr << FormatLossSummary(report) << std::flush;
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
  absl::StatusOr<std::unique_ptr<BpfPageTracker>> tracker = BpfPageTracker::Start(options.tracker);
  if (!tracker.ok()) return tracker.status();
  absl::StatusOr<TrackerSnapshot> first = (*tracker)->Snapshot();
  if (!first.ok()) return first.status();
  absl::StatusOr<PageCensus> census = TakePageCensus();
  if (!census.ok()) std::cerr << "apq-agent: no census of pages in use at start: " << census.status().message() << "\n";
  absl::StatusOr<std::vector<apq::v1::StartHolder>> holders = FindStartHolders();
  absl::StatusOr<KernelSymbols> symbols = KernelSymbols::LoadFromProc();
  if (!symbols.ok()) return symbols.status();

  std::cerr << "apq-agent: tracing started, mode "
            << (options.tracker.sampling.exact()
                    ? "exact"
                    : absl::StrCat("sampled, --sample-bytes ", options.tracker.sampling.sample_bytes()))
            << ", hooks: " << (*tracker)->coverage().program_type << std::endl;
  APQ_RETURN_IF_ERROR(AnnounceReady(options.ready_file, {}));

  CgroupNames cgroups;
  const std::vector<std::pair<std::string, uint64_t>> held_at_start_by_cgroup =
      census.ok() ? HeldAtStartByCgroup(*census) : std::vector<std::pair<std::string, uint64_t>>{};
  ReportBuilder builder(&*symbols, &cgroups, options.tracker.sampling, first->monotonic_seconds);
  builder.set_class_filter(options.class_filter);
  builder.Learn(*first);
  const double first_seconds = first->monotonic_seconds;
  TrackerSnapshot previous = std::move(*first);
  // A profile is written once, at the end (--duration or SIGINT/SIGTERM).
  const bool final_only = options.format == OutputFormat::kPprof ||
                          (options.duration_seconds > 0 && options.format != OutputFormat::kTable);
  // Every printed report is classified (a whole core is the budget: an
  // operator is waiting for the answer); all pages read again every 30 s.
  ClassificationSchedule classifications(kDefaultFullClassifySeconds, /*cpu_share=*/1.0);
  if (absl::Status dropped = DropCapabilitiesAfterStart(); !dropped.ok()) return dropped;
  double elapsed = 0;
  bool stop = false;
  while (!stop) {
    double wait = options.interval_seconds;
    if (options.duration_seconds > 0) wait = std::min(wait, options.duration_seconds - elapsed);
    stop = !signals.Sleep(std::max(wait, 0.0));
    absl::StatusOr<TrackerSnapshot> now = (*tracker)->Snapshot();
    if (!now.ok()) return now.status();
    elapsed = now->monotonic_seconds - first_seconds;
    if (options.duration_seconds > 0 && elapsed >= options.duration_seconds - 1e-3) stop = true;
    const bool print = stop || !final_only;
    // Classifying walks the pfn table and /proc/kpageflags: only for reports that are printed.
    const ClassificationSchedule::Pass pass =
        print ? classifications.Due(now->monotonic_seconds) : ClassificationSchedule::Pass::kNone;
    if (pass != ClassificationSchedule::Pass::kNone) {
      if (absl::Status status = (*tracker)->ClassifyPages(&*now, pass == ClassificationSchedule::Pass::kFull);
          !status.ok()) {
        // Without classes there is no hidden term to explain with.
        if (options.explain) return status;
        std::cerr << "apq-agent: pages not classified (all pages shown): " << status.message() << "\n";
      } else {
        classifications.Done(pass, now->monotonic_seconds, now->page_classes->seconds);
      }
    }
    Report report = builder.Build(*now, &previous, options.top);
    report.hooked_paths = (*tracker)->coverage().hooked_paths;
    report.blind_paths = (*tracker)->coverage().blind_paths;
    if (census.ok()) {
      report.census_at_start = *census;
      report.held_at_start_by_cgroup = held_at_start_by_cgroup;
      if (holders.ok()) {
        report.held_at_start_holders = *holders;
      } else {
        report.held_at_start_holders_unavailable = std::string(holders.status().message());
      }
    }
    if (print && options.explain) {
      APQ_RETURN_IF_ERROR(PrintExplanation(report, options.format));
    } else if (print && options.format == OutputFormat::kPprof) {
      APQ_RETURN_IF_ERROR(PrintProfile(report));
    } else if (print) {
      Print(report, options);
    }
    previous = std::move(*now);
  }
  return absl::OkStatus();
}

}  // namespace apq
