#ifndef APQ_COMMON_DISPLAY_H_
#define APQ_COMMON_DISPLAY_H_

#include <cstddef>
#include <string>
#include <vector>

namespace apq {

// How the tables of apq top and apq-agent --local show sizes and call paths
// to a person (json always carries exact bytes and whole paths).
struct TableStyle {
  bool exact_bytes = false;  // --bytes: byte counts instead of IEC units
  size_t width = 0;          // columns a line may take; 0: no limit (--wide, or not a terminal)
};

// The style for standard output: its width from COLUMNS, else from the
// terminal; no limit when `wide` or when it is not a terminal.
TableStyle StdoutTableStyle(bool exact_bytes, bool wide);

// "512 B", "12.0 KiB", "3.5 GiB"; the byte count with exact_bytes.
std::string ShownBytes(double bytes, const TableStyle& style);

// A call path (root first) as a person reads it, innermost first:
// "leaf <- caller <- ...", cut with "..." to `columns` (0: whole).
std::string CallerChain(const std::vector<std::string>& root_first, size_t columns);

// The line, cut to the style's width (a "..." at the end when cut).
std::string FitLine(const std::string& line, const TableStyle& style);

}  // namespace apq

#endif  // APQ_COMMON_DISPLAY_H_
