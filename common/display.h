#ifndef APQ_COMMON_DISPLAY_H_
#define APQ_COMMON_DISPLAY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
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

// What starts each table of a live view: on a terminal, cursor home and
// erase (the table is redrawn in place, like top); into a pipe or a file,
// nothing (a plain log of one table per interval).
std::string LiveViewRedraw();

// "2026-12-02T11:40:00Z": a time as every table shows it (UTC, RFC 3339).
std::string Timestamp(int64_t unix_millis);

// "512 B", "12.0 KiB", "3.5 GiB"; the byte count with exact_bytes.
std::string ShownBytes(double bytes, const TableStyle& style);

// A call path (root first) as a person reads it, innermost first:
// "leaf <- caller <- ...", cut with "..." to `columns` (0: whole).
std::string CallerChain(const std::vector<std::string>& root_first, size_t columns);

// The line, cut to the style's width (a "..." at the end when cut).
std::string FitLine(const std::string& line, const TableStyle& style);

// The line under a class view's heading for pages of no known class yet
// (in no row of the view): "not yet classified: 3.0 MiB on 12 paths ...".
std::string UnclassifiedLine(double bytes, uint64_t paths, const TableStyle& style);

// The path table of apq top and apq-agent --local, one layout for both:
// OUTSTANDING, STD.ERR (empty for exact figures), the table's own columns
// (HOSTS; ALLOC/s FREE/s), CLASS, then the group: a call path as
// "leaf <- callers", cut to what the width leaves, or a name.
class PathTable {
 public:
  struct Row {
    double bytes = 0;
    double standard_error = 0;      // 0: exact
    std::vector<std::string> own;   // one cell per own column
    std::string page_class;         // the class holding most of the bytes; "" when not split
    std::vector<std::string> path;  // root first; one element for a function, host, ...
  };

  PathTable(TableStyle style, std::vector<std::string> own_titles, std::string group_title);

  std::string Header() const;
  std::string Line(const Row& row) const;
  // A line under a row (a process holding part of its path): the size
  // under OUTSTANDING, the text indented under the group.
  std::string DetailLine(double bytes, const std::string& text) const;
  const TableStyle& style() const { return style_; }

 private:
  std::string Cells(const std::string& outstanding, const std::string& standard_error,
                    const std::vector<std::string>& own, const std::string& page_class) const;

  TableStyle style_;
  std::vector<std::string> own_titles_;
  std::string group_title_;
};

}  // namespace apq

#endif  // APQ_COMMON_DISPLAY_H_
