#ifndef APQ_COMMON_MEMINFO_BALANCE_H_
#define APQ_COMMON_MEMINFO_BALANCE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace apq {

// /proc/meminfo's fields in bytes (kB values times 1024, counts as they are).
absl::StatusOr<absl::flat_hash_map<std::string, uint64_t>> ParseMeminfo(absl::string_view text);

// MemTotal = MemFree + the meminfo fields that count used pages
//          + hidden pages apq traced + hidden pages it did not trace.
// The last term is what is left; its parts say where it can come from.
struct MeminfoBalance {
  uint64_t mem_total = 0, mem_free = 0;
  // Fields that count pages in use, each once: LRU lists (which hold the
  // page cache, anonymous and shmem pages), Unevictable, Slab, PageTables,
  // SecPageTables, KernelStack, VmallocUsed, Percpu, Hugetlb (or
  // HugePages_Total x Hugepagesize), and where the kernel has them Zswap,
  // Balloon, Unaccepted, HardwareCorrupted. In this order; absent fields left out.
  std::vector<std::pair<std::string, uint64_t>> visible;
  uint64_t visible_sum = 0;
  double hidden_traced = 0;
  double hidden_untraced = 0;  // MemTotal - MemFree - visible - hidden traced; negative: counted twice
  // Known parts of the untraced term, each with its reason.
  std::vector<std::pair<std::string, double>> untraced_parts;
  std::vector<std::string> notes;  // why the equation cannot close exactly
};

// hidden_traced: bytes apq attributes to paths no meminfo field counts;
// held_at_start: bytes in use when tracing started with no kpageflags class,
// less what VmallocUsed and Percpu counted then (PageCensus::HiddenEstimate).
absl::StatusOr<MeminfoBalance> BalanceMeminfo(const absl::flat_hash_map<std::string, uint64_t>& meminfo,
                                              double hidden_traced, double held_at_start);

}  // namespace apq

#endif  // APQ_COMMON_MEMINFO_BALANCE_H_
