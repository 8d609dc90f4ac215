#include "common/page_census.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/errors.h"
#include "common/files.h"

namespace apq {
namespace {

// Bits of /proc/kpageflags (Documentation/admin-guide/mm/pagemap.rst).
constexpr int kSlab = 7, kLru = 5, kBuddy = 10, kAnon = 12, kSwapBacked = 14, kHuge = 17, kNoPage = 20,
              kOffline = 23, kPgtable = 26, kReserved = 32;

enum ClassIndex { kClassSlab, kClassPageTables, kClassHugetlb, kClassAnon, kClassFile, kClassOffline, kClassReserved, kNumClasses };
constexpr std::array<absl::string_view, kNumClasses> kClassNames = {
    "slab", "page tables", "hugetlb", "anonymous and shmem (LRU)", "page cache (LRU)", "offline", "reserved",
};

bool Has(uint64_t flags, int bit) { return (flags >> bit) & 1; }

}  // namespace

uint64_t PageCensus::Classified() const {
  uint64_t sum = 0;
  for (const Class& c : classes) sum += c.pages;
  return sum;
}

uint64_t PageCensus::Unclassified() const {
  uint64_t classified = Classified();
  return in_use_pages > classified ? in_use_pages - classified : 0;
}

PageCensus ClassifyKpageflags(const uint64_t* flags, size_t count, uint64_t in_use_pages) {
  std::array<uint64_t, kNumClasses> pages{};
  for (size_t i = 0; i < count; ++i) {
    uint64_t f = flags[i];
    if (f == 0 || Has(f, kNoPage) || Has(f, kBuddy)) continue;
    if (Has(f, kSlab)) {
      ++pages[kClassSlab];
    } else if (Has(f, kPgtable)) {
      ++pages[kClassPageTables];
    } else if (Has(f, kHuge) && !Has(f, kLru)) {
      ++pages[kClassHugetlb];
    } else if (Has(f, kAnon) || Has(f, kSwapBacked)) {
      ++pages[kClassAnon];
    } else if (Has(f, kLru)) {
      ++pages[kClassFile];
    } else if (Has(f, kOffline)) {
      ++pages[kClassOffline];
    } else if (Has(f, kReserved)) {
      ++pages[kClassReserved];
    }
  }
  PageCensus census;
  census.in_use_pages = in_use_pages;
  for (int i = 0; i < kNumClasses; ++i) census.classes.push_back({std::string(kClassNames[i]), pages[i]});
  return census;
}

absl::StatusOr<uint64_t> InUsePagesFromMeminfo(absl::string_view meminfo) {
  uint64_t total_kib = 0, free_kib = 0;
  bool have_total = false, have_free = false;
  for (absl::string_view line : absl::StrSplit(meminfo, '\n')) {
    uint64_t* target = nullptr;
    if (absl::ConsumePrefix(&line, "MemTotal:")) {
      target = &total_kib;
      have_total = true;
    } else if (absl::ConsumePrefix(&line, "MemFree:")) {
      target = &free_kib;
      have_free = true;
    } else {
      continue;
    }
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, "kB");
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), target)) {
      return absl::InvalidArgumentError(absl::StrCat("meminfo: bad value '", line, "'"));
    }
  }
  if (!have_total || !have_free) return absl::InvalidArgumentError("meminfo: MemTotal or MemFree missing");
  return total_kib > free_kib ? (total_kib - free_kib) / 4 : 0;
}

absl::StatusOr<PageCensus> TakePageCensus(const std::string& kpageflags, const std::string& meminfo) {
  absl::StatusOr<std::string> meminfo_text = ReadFileToString(meminfo);
  if (!meminfo_text.ok()) return meminfo_text.status();
  absl::StatusOr<uint64_t> in_use = InUsePagesFromMeminfo(*meminfo_text);
  if (!in_use.ok()) return in_use.status();

  int fd = open(kpageflags.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", kpageflags));
  std::vector<uint64_t> buffer(1 << 17);
  PageCensus total = ClassifyKpageflags(nullptr, 0, *in_use);
  while (true) {
    ssize_t n = read(fd, buffer.data(), buffer.size() * sizeof(uint64_t));
    if (n < 0) {
      int err = errno;
      close(fd);
      return ErrnoStatus(err, absl::StrCat("read ", kpageflags));
    }
    if (n == 0) break;
    PageCensus part = ClassifyKpageflags(buffer.data(), static_cast<size_t>(n) / sizeof(uint64_t), 0);
    for (size_t i = 0; i < total.classes.size(); ++i) total.classes[i].pages += part.classes[i].pages;
  }
  close(fd);
  return total;
}

}  // namespace apq
