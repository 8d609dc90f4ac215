#include "common/display.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace apq {
namespace {

constexpr char kCut[] = "...";
constexpr char kArrow[] = " <- ";

}  // namespace

TableStyle StdoutTableStyle(bool exact_bytes, bool wide) {
  TableStyle style{exact_bytes, 0};
  if (wide) return style;
  size_t columns = 0;
  if (const char* env = std::getenv("COLUMNS"); env && absl::SimpleAtoi(env, &columns) && columns > 0) {
    style.width = columns;
    return style;
  }
  winsize size{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) style.width = size.ws_col;
  return style;
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

}  // namespace apq
