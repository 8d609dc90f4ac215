#include "agent/host_of_one.h"

#include "absl/strings/str_cat.h"
#include "aggregator/query_explain.h"
#include "aggregator/query_now.h"
#include "common/wire_limits.h"

namespace apq {

HostOfOne::HostOfOne(FrameEncoder* frames, TableOf table_of, std::string host, uint64_t sample_bytes,
                     std::function<std::string(uint64_t)> cgroup_name)
    // Reports are applied as they are made: the queue never holds more than one.
    : stream_(frames, kMaxMessageBytes, std::move(cgroup_name)),
      namer_([table_of = std::move(table_of)](const SymbolTableKey& key)
                 -> absl::StatusOr<std::optional<apq::v1::SymbolTable>> { return table_of(key.object); }) {
  epoch_.epoch_id = 1;
  epoch_.host_id = 1;
  epoch_.host = std::move(host);
  epoch_.sample_bytes = sample_bytes;
}

absl::Status HostOfOne::Add(const TrackerSnapshot& snapshot, const apq::v1::Losses& losses,
                            const apq::v1::Coverage& coverage, int64_t unix_millis, const ClassifiedPages* classified) {
  stream_.Add(snapshot, losses, coverage, unix_millis, classified);
  for (const apq::v1::Report& report : stream_.unacknowledged()) {
    absl::StatusOr<EpochState::Outcome> outcome = epoch_.state.Apply(report);
    if (!outcome.ok()) return outcome.status();
    if (*outcome != EpochState::Outcome::kApplied) {
      return absl::InternalError(absl::StrCat("report ", report.sequence(), " was not applied in order"));
    }
    epoch_.last_report_ms = report.unix_millis();
  }
  stream_.Acknowledge(stream_.last_sequence());
  return absl::OkStatus();
}

absl::StatusOr<apq::v1::TopResponse> HostOfOne::Top(const apq::v1::TopRequest& request) {
  return TopOfEpochs({&epoch_}, request, &namer_);
}

absl::StatusOr<apq::v1::ExplainResponse> HostOfOne::Explain(const apq::v1::ExplainRequest& request) {
  return ExplainEpochs({&epoch_}, request, &namer_);
}

}  // namespace apq
