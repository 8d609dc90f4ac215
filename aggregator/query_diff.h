#ifndef APQ_AGGREGATOR_QUERY_DIFF_H_
#define APQ_AGGREGATOR_QUERY_DIFF_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "aggregator/store.h"
#include "apq/v1/apq.pb.h"

namespace apq {

// Compares the sides group by group: each group's mean bytes over its
// side's samples, per host of that side's mean cohort, so that cohorts of
// different sizes (a wave half done) compare fairly. Groups on one side only
// are "new" or "vanished", never dropped. Largest change per host first;
// `top` 0 keeps all.
apq::v1::DiffResponse DiffOf(const DiffSide& before, const DiffSide& after, uint32_t top);

}  // namespace apq

#endif  // APQ_AGGREGATOR_QUERY_DIFF_H_
