#ifndef APQ_AGENT_LOCAL_MODE_H_
#define APQ_AGENT_LOCAL_MODE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/bpf_page_tracker.h"
#include "apq/v1/apq.pb.h"
#include "common/display.h"

namespace apq {

enum class OutputFormat { kTable, kJson, kFolded, kPprof };
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name);

struct LocalOptions {
  double interval_seconds = 5;
  double duration_seconds = 0;  // 0: until SIGINT or SIGTERM
  // What each interval asks of the host, as apq top asks the fleet (by
  // stack; class, top and pid from the flags).
  apq::v1::TopRequest request;
  OutputFormat format = OutputFormat::kTable;
  TableStyle table_style;  // --bytes, --wide
  std::string ready_file;  // --ready-file: written once tracing runs
  // Print /proc/meminfo reconciled with the hidden paths instead of the top.
  bool explain = false;
  BpfTrackerOptions tracker;
};

// Tracks this host's page allocations and prints the top call paths every
// interval, and a final report at the end. With a duration, the json and
// folded formats print only the final report; pprof (a gzipped profile)
// always only that.
absl::Status RunLocal(const LocalOptions& options);

}  // namespace apq

#endif  // APQ_AGENT_LOCAL_MODE_H_
