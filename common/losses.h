#ifndef APQ_COMMON_LOSSES_H_
#define APQ_COMMON_LOSSES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "apq/v1/apq.pb.h"

namespace apq {

// Every loss counter of apq.v1.Losses, in field order, named as the field.
// The message is their list (its BPF-counted fields come from
// APQ_LOSS_COUNTERS in bpf/page_tracker.h), so a new counter shows up in
// every printout without touching them. A value of -1 was not counted.
std::vector<std::pair<std::string, int64_t>> LossValues(const apq::v1::Losses& losses);

// "free-unknown-pages=0 alloc-over-live-pages=3 ... recursion-misses=not-counted"
std::string FormatLosses(const apq::v1::Losses& losses);

}  // namespace apq

#endif  // APQ_COMMON_LOSSES_H_
