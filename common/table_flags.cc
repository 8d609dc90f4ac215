#include "common/table_flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(bool, bytes, false,
          "Tables: sizes as exact byte counts instead of IEC units (12.0 MiB); json always has bytes.");
ABSL_FLAG(bool, wide, false,
          "Tables: whole call paths, however long (default: cut to the terminal's width, from COLUMNS or the tty).");

namespace apq {

TableStyle TableStyleFromFlags() { return StdoutTableStyle(absl::GetFlag(FLAGS_bytes), absl::GetFlag(FLAGS_wide)); }

}  // namespace apq
