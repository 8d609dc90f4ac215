#ifndef APQ_AGENT_HOST_OF_ONE_H_
#define APQ_AGENT_HOST_OF_ONE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "aggregator/fleet_epoch.h"
#include "aggregator/query_paths.h"
#include "agent/report_stream.h"
#include "apq/v1/apq.pb.h"

namespace apq {

// This host as a fleet of one (apq-agent --local): its snapshots become
// reports as a streaming agent's do, applied to an epoch as the aggregator
// applies them, and asked with the aggregator's queries. A host alone and a
// fleet answer with the same code.
class HostOfOne {
 public:
  // The symbol table of a code object the frames named, as an agent uploads it.
  using TableOf = std::function<std::optional<apq::v1::SymbolTable>(const std::string& object)>;
  // cgroup_name as ReportStream takes it.
  HostOfOne(FrameEncoder* frames, TableOf table_of, std::string host, uint64_t sample_bytes,
            std::function<std::string(uint64_t)> cgroup_name);

  // The snapshot reported and applied; classified: null when it was not.
  absl::Status Add(const TrackerSnapshot& snapshot, const apq::v1::Losses& losses, const apq::v1::Coverage& coverage,
                   int64_t unix_millis, const ClassifiedPages* classified);
  absl::StatusOr<apq::v1::TopResponse> Top(const apq::v1::TopRequest& request);
  absl::StatusOr<apq::v1::ExplainResponse> Explain(const apq::v1::ExplainRequest& request);
  const HostEpoch& epoch() const { return epoch_; }

 private:
  ReportStream stream_;
  HostEpoch epoch_;
  PathNamer namer_;
};

}  // namespace apq

#endif  // APQ_AGENT_HOST_OF_ONE_H_
