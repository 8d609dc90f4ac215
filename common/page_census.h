#ifndef APQ_COMMON_PAGE_CENSUS_H_
#define APQ_COMMON_PAGE_CENSUS_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"

namespace apq {

// Pages in use before tracing started, by what /proc/kpageflags says of
// them. The tracker cannot attribute these to a stack; it shows them.
struct PageCensus {
  struct Class {
    std::string name;
    uint64_t pages = 0;
  };
  std::vector<Class> classes;  // fixed order, see ClassifyKpageflags
  uint64_t in_use_pages = 0;   // MemTotal - MemFree at the census
  uint64_t Classified() const;
  // In use but in no class: kernel pages such as pipe buffers, driver
  // memory and page-allocator users that no meminfo field counts.
  uint64_t Unclassified() const;
};

// Counts pages by class from raw /proc/kpageflags words (one u64 per pfn).
// Free pages (BUDDY heads and the tails of their blocks carry no flag) and
// absent pfns are not counted; in_use_pages is taken from meminfo.
PageCensus ClassifyKpageflags(const uint64_t* flags, size_t count, uint64_t in_use_pages);

// Reads /proc/kpageflags and /proc/meminfo.
absl::StatusOr<PageCensus> TakePageCensus(const std::string& kpageflags = "/proc/kpageflags",
                                          const std::string& meminfo = "/proc/meminfo");

// MemTotal - MemFree, in pages, from /proc/meminfo text.
absl::StatusOr<uint64_t> InUsePagesFromMeminfo(absl::string_view meminfo);

}  // namespace apq

#endif  // APQ_COMMON_PAGE_CENSUS_H_
