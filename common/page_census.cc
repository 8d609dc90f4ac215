#include "common/page_census.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <optional>
#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/errors.h"
#include "common/files.h"
#include "common/meminfo_balance.h"
#include "common/page_classes.h"
#include "common/sampling.h"

namespace apq {
namespace {

// The census's classes: the flag classes of page_classes.h, then pages
// that are offline or reserved.
constexpr PageClass kFlagClasses[] = {apq::v1::PAGE_CLASS_SLAB,    apq::v1::PAGE_CLASS_PAGE_TABLES,
                                      apq::v1::PAGE_CLASS_HUGETLB, apq::v1::PAGE_CLASS_ANON,
                                      apq::v1::PAGE_CLASS_FILE,    apq::v1::PAGE_CLASS_UNEVICTABLE};
constexpr size_t kOffline = std::size(kFlagClasses), kReserved = kOffline + 1, kNumClasses = kReserved + 1;

}  // namespace

uint64_t PageCensus::Classified() const {
  uint64_t sum = 0;
  for (const Class& c : classes) sum += c.in_mem_total ? c.pages : 0;
  return sum;
}

uint64_t PageCensus::Unclassified() const {
  uint64_t classified = Classified();
  return in_use_pages > classified ? in_use_pages - classified : 0;
}

int64_t PageCensus::HiddenEstimate() const {
  return static_cast<int64_t>(Unclassified()) - static_cast<int64_t>(vmalloc_and_percpu_pages);
}

PageCensus ClassifyKpageflags(const uint64_t* flags, const uint64_t* memcgs, size_t count, uint64_t in_use_pages) {
  std::array<uint64_t, kNumClasses> pages{};
  PageCensus census;
  for (size_t i = 0; i < count; ++i) {
    const uint64_t f = flags[i];
    if (kpf::Has(f, kpf::kNoPage) || kpf::Has(f, kpf::kBuddy)) continue;
    if (std::optional<PageClass> c = FlagClassOf(f)) {
      ++pages[std::find(std::begin(kFlagClasses), std::end(kFlagClasses), *c) - std::begin(kFlagClasses)];
    } else if (kpf::Has(f, kpf::kOffline)) {
      ++pages[kOffline];
    } else if (kpf::Has(f, kpf::kReserved)) {
      ++pages[kReserved];
    } else if (memcgs && memcgs[i] != 0) {
      ++census.unflagged_pages_by_memcg[memcgs[i]];
    }
  }
  census.in_use_pages = in_use_pages;
  for (size_t i = 0; i < kNumClasses; ++i) {
    std::string name = i == kOffline ? "offline" : i == kReserved ? "reserved" : PageClassName(kFlagClasses[i]);
    census.classes.push_back({std::move(name), pages[i], i != kOffline && i != kReserved});
  }
  return census;
}

absl::StatusOr<uint64_t> InUsePages(const absl::flat_hash_map<std::string, uint64_t>& meminfo) {
  auto total = meminfo.find("MemTotal"), free = meminfo.find("MemFree");
  if (total == meminfo.end() || free == meminfo.end()) {
    return absl::InvalidArgumentError("meminfo: MemTotal or MemFree missing");
  }
  return total->second > free->second ? (total->second - free->second) / kPageSize : 0;
}

absl::StatusOr<PageCensus> TakePageCensus(const std::string& kpageflags, const std::string& kpagecgroup,
                                          const std::string& meminfo) {
  absl::StatusOr<std::string> meminfo_text = ReadFileToString(meminfo);
  if (!meminfo_text.ok()) return meminfo_text.status();
  absl::StatusOr<absl::flat_hash_map<std::string, uint64_t>> fields = ParseMeminfo(*meminfo_text);
  if (!fields.ok()) return fields.status();
  absl::StatusOr<uint64_t> in_use = InUsePages(*fields);
  if (!in_use.ok()) return in_use.status();
  uint64_t vmalloc_and_percpu = 0;
  for (const char* field : {"VmallocUsed", "Percpu"}) {
    if (auto it = fields->find(field); it != fields->end()) vmalloc_and_percpu += it->second / kPageSize;
  }

  int fd = open(kpageflags.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", kpageflags));
  int memcg_fd = open(kpagecgroup.c_str(), O_RDONLY | O_CLOEXEC);  // absent without CONFIG_MEMCG
  constexpr size_t kChunk = 1 << 17;
  std::vector<uint64_t> flags(kChunk), memcgs(kChunk);
  PageCensus total = ClassifyKpageflags(nullptr, nullptr, 0, *in_use);
  absl::Status status;
  for (off_t offset = 0;; offset += static_cast<off_t>(kChunk * sizeof(uint64_t))) {
    ssize_t n = pread(fd, flags.data(), kChunk * sizeof(uint64_t), offset);
    if (n < 0) status = ErrnoStatus(errno, absl::StrCat("read ", kpageflags));
    if (n <= 0) break;
    ssize_t m = memcg_fd < 0 ? -1 : pread(memcg_fd, memcgs.data(), static_cast<size_t>(n), offset);
    PageCensus part = ClassifyKpageflags(flags.data(), m == n ? memcgs.data() : nullptr,
                                         static_cast<size_t>(n) / sizeof(uint64_t), 0);
    for (size_t i = 0; i < total.classes.size(); ++i) total.classes[i].pages += part.classes[i].pages;
    for (const auto& [memcg, pages] : part.unflagged_pages_by_memcg) total.unflagged_pages_by_memcg[memcg] += pages;
  }
  close(fd);
  if (memcg_fd >= 0) close(memcg_fd);
  if (!status.ok()) return status;
  total.vmalloc_and_percpu_pages = vmalloc_and_percpu;
  return total;
}

}  // namespace apq
