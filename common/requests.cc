#include "common/requests.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/page_classes.h"
#include "common/status_macros.h"

namespace apq {
namespace {

absl::StatusOr<int64_t> ParseTime(absl::string_view text, absl::Time now) {
  absl::Time when;
  absl::Duration ago;
  std::string error;
  for (const char* format : {absl::RFC3339_full, "%Y-%m-%d%ET%H:%M%Ez"}) {
    if (absl::ParseTime(format, std::string(text), &when, &error)) return absl::ToUnixMillis(when);
  }
  if (absl::ParseDuration(std::string(text), &ago) && ago >= absl::ZeroDuration()) {
    return absl::ToUnixMillis(now - ago);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is neither an RFC 3339 time (2026-11-01T00:00Z) nor a time ago (2h)"));
}

std::string Param(const RequestParams& params, const std::string& name, const std::string& otherwise = "") {
  auto found = params.find(name);
  return found == params.end() || found->second.empty() ? otherwise : found->second;
}

// "" -> 0 (not given); else a time as ParseTime reads it.
absl::StatusOr<int64_t> WhenParam(const RequestParams& params, const std::string& name, absl::Time now) {
  const std::string text = Param(params, name);
  if (text.empty()) return 0;
  absl::StatusOr<int64_t> when = ParseTime(text, now);
  if (!when.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", when.status().message()));
  return when;
}

absl::StatusOr<apq::v1::GroupBy> GroupByParam(const RequestParams& params) {
  const std::string by = Param(params, "by", "stack");
  apq::v1::GroupBy group_by;
  if (absl::AsciiStrToLower(by) != by || !apq::v1::GroupBy_Parse("GROUP_BY_" + absl::AsciiStrToUpper(by), &group_by)) {
    return absl::InvalidArgumentError(
        absl::StrCat("by must be stack, function, host, process, cgroup or build, not '", by, "'"));
  }
  return group_by;
}

absl::StatusOr<uint32_t> TopParam(const RequestParams& params) {
  uint32_t top = 20;
  const std::string text = Param(params, "top");
  if (!text.empty() && (!absl::SimpleAtoi(text, &top) || top > kMaxTopEntries)) {
    return absl::InvalidArgumentError(absl::StrCat("top must be between 0 and ", kMaxTopEntries, ", not '", text, "'"));
  }
  return top;
}

}  // namespace

absl::StatusOr<apq::v1::TopRequest> TopRequestOf(const RequestParams& params, absl::Time now) {
  apq::v1::TopRequest request;
  request.set_cluster(Param(params, "cluster"));
  APQ_ASSIGN_OR_RETURN(const apq::v1::GroupBy by, GroupByParam(params));
  request.set_group_by(by);
  APQ_ASSIGN_OR_RETURN(const uint32_t top, TopParam(params));
  request.set_top(top);
  request.set_host(Param(params, "host"));
  const std::string hex = Param(params, "build");
  if (hex.size() % 2 != 0 || !std::all_of(hex.begin(), hex.end(), [](char c) { return absl::ascii_isxdigit(c); })) {
    return absl::InvalidArgumentError(absl::StrCat("build must be a hex build ID, not '", hex, "'"));
  }
  request.set_build_id(absl::HexStringToBytes(hex));
  request.set_frame_substring(Param(params, "frame"));
  const std::string pid = Param(params, "pid", "0");
  uint32_t tgid = 0;
  if (!absl::SimpleAtoi(pid, &tgid))
    return absl::InvalidArgumentError(absl::StrCat("pid must be a process ID, not '", pid, "'"));
  request.set_pid(tgid);
  const std::string processes = Param(params, "processes", "false");
  if (processes != "true" && processes != "false") {
    return absl::InvalidArgumentError(absl::StrCat("processes must be true or false, not '", processes, "'"));
  }
  request.set_with_processes(processes == "true");
  APQ_ASSIGN_OR_RETURN(const int64_t at, WhenParam(params, "at", now));
  APQ_ASSIGN_OR_RETURN(const int64_t since, WhenParam(params, "since", now));
  request.set_at_unix_millis(at);
  request.set_since_unix_millis(since);
  // History keeps every class together: all is its only view.
  APQ_ASSIGN_OR_RETURN(const ClassFilter filter,
                       ParseClassFilter(Param(params, "class", at != 0 || since != 0 ? "all" : "hidden")));
  request.set_class_filter(filter);
  return request;
}

absl::StatusOr<apq::v1::ExplainRequest> ExplainRequestOf(const RequestParams& params) {
  apq::v1::ExplainRequest request;
  request.set_cluster(Param(params, "cluster"));
  request.set_host(Param(params, "host"));
  const std::string by = Param(params, "by");
  if (!by.empty() && by != "host" && by != "stack") {
    return absl::InvalidArgumentError(absl::StrCat("explain: by must be host (or left out), not '", by, "'"));
  }
  request.set_by_host(by == "host");
  APQ_ASSIGN_OR_RETURN(const uint32_t top, TopParam(params));
  request.set_top(top);
  return request;
}

absl::StatusOr<apq::v1::DiffRequest> DiffRequestOf(const RequestParams& params, absl::Time now) {
  apq::v1::DiffRequest request;
  request.set_cluster(Param(params, "cluster"));
  APQ_ASSIGN_OR_RETURN(const apq::v1::GroupBy by, GroupByParam(params));
  request.set_group_by(by);
  APQ_ASSIGN_OR_RETURN(const uint32_t top, TopParam(params));
  request.set_top(top);
  // No after: the newest sample.
  const std::string before = Param(params, "before"), after = Param(params, "after");
  if (before.empty())
    return absl::InvalidArgumentError("diff needs before (a selector of the history to compare against)");
  absl::StatusOr<apq::v1::DiffSelector> selector = ParseDiffSelector(before, now);
  if (!selector.ok()) return absl::InvalidArgumentError(absl::StrCat("before: ", selector.status().message()));
  *request.mutable_before() = *std::move(selector);
  selector = ParseDiffSelector(after, now);
  if (!selector.ok()) return absl::InvalidArgumentError(absl::StrCat("after: ", selector.status().message()));
  *request.mutable_after() = *std::move(selector);
  return request;
}

absl::StatusOr<apq::v1::DiffSelector> ParseDiffSelector(absl::string_view text, absl::Time now) {
  apq::v1::DiffSelector selector;
  bool timed = false;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::ConsumePrefix(&part, "build=")) {
      std::string hex = absl::AsciiStrToLower(part);
      if (hex.empty() || !std::all_of(hex.begin(), hex.end(), [](char c) { return absl::ascii_isxdigit(c); })) {
        return absl::InvalidArgumentError(absl::StrCat("build= takes a hex build ID or its prefix, not '", part, "'"));
      }
      selector.set_build_hex_prefix(hex);
    } else if (absl::ConsumePrefix(&part, "release=")) {
      selector.set_release(std::string(part));
    } else if (absl::ConsumePrefix(&part, "host=")) {
      selector.set_host(std::string(part));
    } else if (timed) {
      return absl::InvalidArgumentError(absl::StrCat("one time or time range per side, not also '", part, "'"));
    } else {
      timed = true;
      std::vector<absl::string_view> ends = absl::StrSplit(part, "..");
      if (ends.size() > 2) return absl::InvalidArgumentError(absl::StrCat("'", part, "' is not FROM..TO"));
      absl::StatusOr<int64_t> from = ParseTime(ends.front(), now);
      if (!from.ok()) return from.status();
      absl::StatusOr<int64_t> to = ends.size() == 2 ? ParseTime(ends.back(), now) : from;
      if (!to.ok()) return to.status();
      if (*from > *to) return absl::InvalidArgumentError(absl::StrCat("'", part, "' runs backwards"));
      selector.set_from_unix_millis(*from);
      selector.set_to_unix_millis(*to);
    }
  }
  return selector;
}

}  // namespace apq
