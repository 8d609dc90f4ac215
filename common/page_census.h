#ifndef APQ_COMMON_PAGE_CENSUS_H_
#define APQ_COMMON_PAGE_CENSUS_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace apq {

// Pages in use before tracing started, by what /proc/kpageflags says of
// them. The tracker cannot attribute these to a stack; it shows them.
struct PageCensus {
  struct Class {
    std::string name;
    uint64_t pages = 0;
    // Reserved and offline pages are not part of MemTotal (totalram), so
    // not of the pages in use it is compared with.
    bool in_mem_total = true;
  };
  std::vector<Class> classes;  // fixed order, see ClassifyKpageflags
  uint64_t in_use_pages = 0;   // MemTotal - MemFree at the census
  // VmallocUsed + Percpu at the census: unflagged pages that meminfo counts.
  uint64_t vmalloc_and_percpu_pages = 0;
  // Pages in use with no page flag (hidden, or vmalloc/percpu/large kmalloc)
  // charged to a memory cgroup, by its inode (/proc/kpagecgroup): what can
  // be attributed of them. Uncharged unflagged pages cannot be told from
  // the tails of free blocks, which carry no flag either.
  absl::flat_hash_map<uint64_t, uint64_t> unflagged_pages_by_memcg;
  uint64_t Classified() const;
  // In use but in no class: kernel pages such as pipe buffers, driver
  // memory and page-allocator users that no meminfo field counts.
  uint64_t Unclassified() const;
  // Unclassified, less what VmallocUsed and Percpu counted then: an estimate
  // of the hidden pages held at start (large kmallocs, in Slab, are in it).
  int64_t HiddenEstimate() const;
};

// Counts pages by class from raw /proc/kpageflags words (one u64 per pfn)
// and, where given (else null), the /proc/kpagecgroup words of the same
// pfns. Free pages (BUDDY heads and the tails of their blocks carry no flag)
// and absent pfns are not counted; in_use_pages is taken from meminfo.
PageCensus ClassifyKpageflags(const uint64_t* flags, const uint64_t* memcgs, size_t count, uint64_t in_use_pages);

// Reads /proc/kpageflags, /proc/kpagecgroup (if the kernel has it) and /proc/meminfo.
absl::StatusOr<PageCensus> TakePageCensus(const std::string& kpageflags = "/proc/kpageflags",
                                          const std::string& kpagecgroup = "/proc/kpagecgroup",
                                          const std::string& meminfo = "/proc/meminfo");

// MemTotal - MemFree, in pages, from /proc/meminfo's fields (ParseMeminfo).
absl::StatusOr<uint64_t> InUsePages(const absl::flat_hash_map<std::string, uint64_t>& meminfo);

}  // namespace apq

#endif  // APQ_COMMON_PAGE_CENSUS_H_
