#include "common/display.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace apq {
namespace {

constexpr char kCut[] = "...";
constexpr char kArrow[] = " <- ";
// Column widths: "1023.9 MiB", "±1023.9 MiB"; exact byte counts take more.
constexpr int kIecWidth = 11, kExactWidth = 16, kClassWidth = 12;

}  // namespace

std::string LiveViewRedraw() { return isatty(STDOUT_FILENO) ? "\033[H\033[2J" : ""; }

TableStyle StdoutTableStyle(bool exact_bytes, bool wide) {
  TableStyle style{exact_bytes, 0};
  if (wide) return style;
  size_t columns = 0;
  if (const char* env = std::getenv("COLUMNS"); env && absl::SimpleAtoi(env, &columns) && columns > 0) {
    style.width = columns;
    return style;
  }
  winsize size{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
    style.width = size.ws_col;
  return style;
}

std::string Timestamp(int64_t unix_millis) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_millis), absl::UTCTimeZone());
}

std::string ShownBytes(double bytes, const TableStyle& style) {
  if (style.exact_bytes) return absl::StrFormat("%.0f", bytes);
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = bytes;
  size_t unit = 0;
  while (std::fabs(value) >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? absl::StrFormat("%.0f %s", value, kUnits[unit]) : absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

std::string CallerChain(const std::vector<std::string>& root_first, size_t columns) {
  const std::vector<std::string> leaf_first(root_first.rbegin(), root_first.rend());
  std::string chain = absl::StrJoin(leaf_first, kArrow);
  if (columns == 0 || chain.size() <= columns || leaf_first.empty()) return chain;
  // The most callers that fit with the cut after them; the leaf is kept
  // whole even where it alone is too long.
  const size_t cut = std::size(kArrow) - 1 + std::size(kCut) - 1;
  chain = leaf_first[0];
  for (size_t i = 1; i < leaf_first.size(); ++i) {
    std::string longer = absl::StrCat(chain, kArrow, leaf_first[i]);
    if (longer.size() + cut > columns) break;
    chain = std::move(longer);
  }
  return chain.size() + cut <= columns ? absl::StrCat(chain, kArrow, kCut) : chain;
}

std::string FitLine(const std::string& line, const TableStyle& style) {
  if (style.width == 0 || line.size() <= style.width) return line;
  const size_t keep = style.width > std::size(kCut) - 1 ? style.width - (std::size(kCut) - 1) : 0;
  return absl::StrCat(line.substr(0, keep), kCut);
}

std::string UnclassifiedLine(double bytes, uint64_t paths, const TableStyle& style) {
  return absl::StrFormat("not yet classified: %s on %d paths (in no row below: --class all shows them)\n",
                         ShownBytes(bytes, style), paths);
}

PathTable::PathTable(TableStyle style, std::vector<std::string> own_titles, std::string group_title)
    : style_(style), own_titles_(std::move(own_titles)), group_title_(std::move(group_title)) {}

std::string PathTable::Cells(const std::string& outstanding, const std::string& standard_error,
                             const std::vector<std::string>& own, const std::string& page_class) const {
  const int width = style_.exact_bytes ? kExactWidth : kIecWidth;
  std::string cells = absl::StrFormat("%*s %*s", width, outstanding, width, standard_error);
  for (size_t i = 0; i < own_titles_.size(); ++i) {
    absl::StrAppendFormat(&cells, " %*s", width, i < own.size() ? own[i] : "");
  }
  absl::StrAppendFormat(&cells, " %-*s ", kClassWidth, page_class);
  return cells;
}

std::string PathTable::Header() const {
  return FitLine(Cells("OUTSTANDING", "STD.ERR", own_titles_, "CLASS") + group_title_, style_) + "\n";
}

std::string PathTable::Line(const Row& row) const {
  const std::string cells = Cells(
      ShownBytes(row.bytes, style_),
      row.standard_error > 0 ? absl::StrCat("±", ShownBytes(row.standard_error, style_)) : "", row.own, row.page_class);
  // The group gets what the cells leave, at least enough for a leaf.
  constexpr size_t kLeastForThePath = 24;
  const size_t columns =
      style_.width == 0 ? 0 : std::max(style_.width > cells.size() ? style_.width - cells.size() : 0, kLeastForThePath);
  return FitLine(cells + CallerChain(row.path, columns), style_) + "\n";
}

std::string PathTable::DetailLine(double bytes, const std::string& text) const {
  return FitLine(Cells(ShownBytes(bytes, style_), "", {}, "") + "  " + text, style_) + "\n";
}

}  // namespace apq
