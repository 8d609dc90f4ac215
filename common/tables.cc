#include "common/tables.h"

#include <array>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/page_classes.h"

namespace apq {
namespace {

std::string ClassesShown(ClassFilter filter) {
  switch (filter) {
    case apq::v1::CLASS_FILTER_HIDDEN:
      return "hidden (counted by no /proc/meminfo field)";
    case apq::v1::CLASS_FILTER_VISIBLE:
      return "visible (counted by a /proc/meminfo field)";
    default:
      return "all";
  }
}

// "now", or which history samples the answer comes from.
std::string WhenShown(const apq::v1::TopRequest& request, const apq::v1::TopResponse& response) {
  if (response.resolution_millis() != 0) {
    const char* resolution = response.resolution_millis() == 60'000 ? "minute samples" : "hourly rows";
    return response.first_sample_unix_millis() == response.last_sample_unix_millis()
               ? absl::StrCat("at ", Timestamp(response.first_sample_unix_millis()), " (", resolution, ")")
               : absl::StrCat("peak over ", Timestamp(response.first_sample_unix_millis()), " .. ",
                              Timestamp(response.last_sample_unix_millis()), " (", resolution, ")");
  }
  if (request.at_unix_millis() != 0 || request.since_unix_millis() != 0) {
    return "no history sample at or before that time";
  }
  return "now";
}

// The class holding most of the bytes a row shows: of the view's classes
// (a hidden view's row is never labelled by the visible pages beside it).
std::string LargestClassOf(const apq::v1::TopEntry& entry, ClassFilter filter) {
  std::array<double, kNumPageClasses> bytes{};
  for (const apq::v1::ClassAmount& amount : entry.classes()) {
    if (apq::v1::PageClass_IsValid(amount.page_class()) && Selected(filter, amount.page_class())) {
      bytes[amount.page_class()] += amount.bytes();
    }
  }
  return LargestClassName(bytes);
}

// Terminals narrower than this show no rate columns: the path needs the room.
constexpr size_t kWidthForRates = 120;

// The largest holders of an entry, a line each, and the rest in one.
std::string ProcessLines(const PathTable& table, const apq::v1::TopEntry& entry) {
  constexpr int kProcessesShown = 5;
  std::string out;
  double rest = 0;
  for (int i = 0; i < entry.processes_size(); ++i) {
    const apq::v1::PathHolder& holder = entry.processes(i);
    if (i >= kProcessesShown) {
      rest += holder.bytes();
      continue;
    }
    // The line summing holders past the answer's own limit names itself.
    const std::string who = holder.tgid() == 0 && holder.comm().starts_with("[")
                                ? holder.comm()
                                : absl::StrFormat("pid %d %s  %s", holder.tgid(), holder.comm(), holder.cgroup());
    out += table.DetailLine(holder.bytes(), holder.host().empty() ? who : absl::StrCat(holder.host(), ": ", who));
  }
  if (entry.processes_size() > kProcessesShown) {
    out += table.DetailLine(rest, absl::StrCat("(", entry.processes_size() - kProcessesShown, " more lines)"));
  }
  return out;
}

}  // namespace

std::string TimeAndAge(int64_t unix_millis, absl::Time now) {
  if (unix_millis == 0) return "never";
  const absl::Time when = absl::FromUnixMillis(unix_millis);
  const absl::Duration age = absl::Trunc(now - when, absl::Seconds(1));
  // FormatDuration writes no unit for zero: "0s" reads as the others do.
  auto shown = [](absl::Duration d) { return d == absl::ZeroDuration() ? std::string("0s") : absl::FormatDuration(d); };
  return absl::StrCat(Timestamp(unix_millis), " (",
                      age >= absl::ZeroDuration() ? absl::StrCat(shown(age), " ago") : absl::StrCat("in ", shown(-age)),
                      ")");
}

std::string SymbolsPending(const apq::v1::TopResponse& response) {
  std::string out;
  for (const apq::v1::SymbolRequest& table : response.symbols_pending()) {
    absl::StrAppend(&out, "symbols for build ", absl::BytesToHexString(table.build_id()).substr(0, 16), " (",
                    table.object(), ") pending: its frames show as ", table.object(),
                    "+0xOFFSET until an agent of that build uploads them\n");
  }
  return out;
}

std::string FormatTopTable(const apq::v1::TopRequest& request, const apq::v1::TopResponse& response,
                           const std::string& group_title, const TableStyle& style) {
  std::string out = absl::StrFormat("%d host%s, %s, pages: %s\n", response.hosts_selected(),
                                    response.hosts_selected() == 1 ? "" : "s", WhenShown(request, response),
                                    ClassesShown(request.class_filter()));
  if (request.class_filter() != apq::v1::CLASS_FILTER_ALL && response.unclassified_paths() > 0) {
    out += UnclassifiedLine(response.unclassified_bytes(), response.unclassified_paths(), style);
  }
  out += SymbolsPending(response);
  const bool by_stack = request.group_by() == apq::v1::GROUP_BY_STACK;
  // Rates are of the hosts' last report interval: "now" answers only, and
  // on a narrow terminal they give way to the path. Hosts only where there
  // are several.
  const bool rates = response.resolution_millis() == 0 && (style.width == 0 || style.width >= kWidthForRates);
  const bool hosts = response.hosts_selected() > 1;
  std::vector<std::string> titles;
  if (rates) titles = {"ALLOC/s", "FREE/s"};
  if (hosts) titles.push_back("HOSTS");
  const PathTable table(style, titles, by_stack ? "CALL PATH (leaf <- callers)" : group_title);
  out += table.Header();
  for (const apq::v1::TopEntry& entry : response.entries()) {
    // A stack's key is folded (root;...;leaf; no frame holds a ';').
    std::vector<std::string> path =
        by_stack ? std::vector<std::string>(absl::StrSplit(entry.key(), ';')) : std::vector<std::string>{entry.key()};
    std::vector<std::string> own;
    if (rates)
      own = {ShownBytes(entry.alloc_bytes_per_second(), style), ShownBytes(entry.free_bytes_per_second(), style)};
    if (hosts) own.push_back(absl::StrCat(entry.hosts()));
    out += table.Line({entry.bytes_outstanding(), entry.standard_error(), std::move(own),
                       LargestClassOf(entry, request.class_filter()), std::move(path)});
    out += ProcessLines(table, entry);
  }
  return out;
}

std::string FormatDiffTable(const apq::v1::DiffRequest& request, const apq::v1::DiffResponse& response,
                            const std::string& group_title, const TableStyle& style) {
  const char* resolution = response.resolution_millis() == 60'000 ? "minute samples" : "hourly rows";
  std::string out =
      absl::StrFormat("before: %d hosts over %d samples; after: %d hosts over %d samples (%s); bytes per host\n",
                      response.before_cohort_hosts(), response.before_samples(), response.after_cohort_hosts(),
                      response.after_samples(), resolution);
  const bool by_stack = request.group_by() == apq::v1::GROUP_BY_STACK;
  const int width = style.exact_bytes ? 16 : 11;
  auto cells = [&](const std::string& before, const std::string& after, const std::string& change,
                   const std::string& error, const std::string& hosts, const std::string& status) {
    return absl::StrFormat("%*s %*s %*s %*s %11s %-9s ", width, before, width, after, width, change, width, error,
                           hosts, status);
  };
  out += FitLine(cells("BEFORE", "AFTER", "CHANGE", "STD.ERR", "HOSTS B/A", "") +
                     (by_stack ? "CALL PATH (leaf <- callers)" : group_title),
                 style) +
         "\n";
  for (const apq::v1::DiffEntry& e : response.entries()) {
    const std::string row =
        cells(ShownBytes(e.before_bytes_per_host(), style), ShownBytes(e.after_bytes_per_host(), style),
              absl::StrCat(e.change_per_host() > 0 ? "+" : "", ShownBytes(e.change_per_host(), style)),
              e.standard_error() > 0 ? absl::StrCat("±", ShownBytes(e.standard_error(), style)) : "",
              absl::StrFormat("%5d/%-5d", e.before_hosts(), e.after_hosts()), e.status());
    const size_t columns = style.width > row.size() ? style.width - row.size() : (style.width == 0 ? 0 : 1);
    const std::string group = by_stack ? CallerChain(absl::StrSplit(e.key(), ';'), columns) : e.key();
    out += FitLine(row + group, style) + "\n";
  }
  return out;
}

std::string FormatClustersTable(const apq::v1::ClustersResponse& response, absl::Time now) {
  if (response.clusters().empty()) return "no cluster: no agent has reported to this aggregator yet\n";
  std::string out = absl::StrFormat("%-24s %6s %10s  %s\n", "CLUSTER", "HOSTS", "REPORTING", "NEWEST REPORT");
  for (const apq::v1::ClusterInfo& cluster : response.clusters()) {
    absl::StrAppendFormat(&out, "%-24s %6d %10d  %s\n", cluster.name(), cluster.hosts(), cluster.hosts_reporting(),
                          TimeAndAge(cluster.newest_report_unix_millis(), now));
  }
  return out;
}

std::string FormatHostsTable(const apq::v1::HostsResponse& response, absl::Time now) {
  std::string out = absl::StrFormat("%-24s %-28s %-16s %-34s %-34s %12s %10s %12s\n", "HOST", "KERNEL", "BUILD",
                                    "LAST REPORT", "CLASSIFIED (AGENT CLOCK)", "UNKNOWN-FREE", "OVER-LIVE", "MISSES");
  for (const apq::v1::HostInfo& host : response.hosts()) {
    const int64_t misses = host.losses().recursion_misses();
    absl::StrAppendFormat(&out, "%-24s %-28s %-16s %-34s %-34s %12d %10d %12s\n", host.host(), host.kernel().release(),
                          absl::BytesToHexString(host.kernel().build_id()).substr(0, 16),
                          TimeAndAge(host.last_report_unix_millis(), now),
                          TimeAndAge(host.classified_unix_millis(), now), host.losses().free_unknown_pages(),
                          host.losses().alloc_over_live_pages(), misses < 0 ? "not-counted" : absl::StrCat(misses));
  }
  return out;
}

}  // namespace apq
