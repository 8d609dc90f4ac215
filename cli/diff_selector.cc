#include "cli/diff_selector.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

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

}  // namespace

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
