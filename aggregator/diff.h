#ifndef APQ_AGGREGATOR_DIFF_H_
#define APQ_AGGREGATOR_DIFF_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "apq/v1/apq.pb.h"

namespace apq {

// One side of `apq diff` as history holds it: per sample, each group's
// bytes (summed over the side's hosts, builds and paths), and the number of
// hosts the side selects in that sample (its cohort).
struct DiffSide {
  struct Cell {
    int64_t sample = 0;
    std::string key;
    double bytes = 0, variance = 0;
    uint32_t hosts = 0;  // of the group
  };
  std::vector<Cell> cells;
  std::map<int64_t, uint32_t> cohort;  // sample -> hosts selected; only samples with hosts
};

// Compares the sides group by group: each group's mean bytes over its
// side's samples, per host of that side's mean cohort, so that cohorts of
// different sizes (a wave half done) compare fairly. Groups on one side only
// are "new" or "vanished", never dropped. Largest change per host first;
// `top` 0 keeps all.
apq::v1::DiffResponse DiffOf(const DiffSide& before, const DiffSide& after, uint32_t top);

}  // namespace apq

#endif  // APQ_AGGREGATOR_DIFF_H_
