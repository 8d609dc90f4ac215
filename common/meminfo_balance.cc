#include "common/meminfo_balance.h"

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace apq {
namespace {

// Fields that count pages in use, none a part of another. Left out on
// purpose: Cached, Buffers, AnonPages, Shmem, SwapCached, Mapped, Mlocked
// (all on the LRU lists already), SReclaimable/SUnreclaim/KReclaimable
// (parts of Slab), *HugePages (parts of the LRU or of Hugetlb).
constexpr absl::string_view kVisibleFields[] = {
    "Active(anon)", "Inactive(anon)", "Active(file)", "Inactive(file)",    "Unevictable", "Slab",
    "PageTables",   "SecPageTables",  "KernelStack",  "VmallocUsed",       "Percpu",      "Hugetlb",
    "Zswap",        "Balloon",        "Unaccepted",   "HardwareCorrupted",
};

}  // namespace

absl::StatusOr<absl::flat_hash_map<std::string, uint64_t>> ParseMeminfo(absl::string_view text) {
  absl::flat_hash_map<std::string, uint64_t> fields;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos)
      return absl::InvalidArgumentError(absl::StrCat("meminfo: bad line '", line, "'"));
    absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    const bool kib = absl::ConsumeSuffix(&value, "kB");
    uint64_t number = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(value), &number) || (kib && number > (uint64_t{1} << 53))) {
      return absl::InvalidArgumentError(absl::StrCat("meminfo: bad value in '", line, "'"));
    }
    fields[std::string(line.substr(0, colon))] = kib ? number * 1024 : number;
  }
  return fields;
}

absl::StatusOr<MeminfoBalance> BalanceMeminfo(const absl::flat_hash_map<std::string, uint64_t>& meminfo,
                                              double hidden_traced, double held_at_start) {
  auto total = meminfo.find("MemTotal"), free = meminfo.find("MemFree");
  if (total == meminfo.end() || free == meminfo.end()) {
    return absl::InvalidArgumentError("meminfo: MemTotal or MemFree missing");
  }
  MeminfoBalance b;
  b.mem_total = total->second;
  b.mem_free = free->second;
  for (absl::string_view field : kVisibleFields) {
    auto it = meminfo.find(field);
    uint64_t bytes = 0;
    if (it != meminfo.end()) {
      bytes = it->second;
    } else if (field == "Hugetlb") {  // kernels before 5.x print only the pool of the default size
      auto pages = meminfo.find("HugePages_Total"), size = meminfo.find("Hugepagesize");
      if (pages == meminfo.end() || size == meminfo.end()) continue;
      bytes = pages->second * size->second;
    } else {
      continue;
    }
    b.visible.emplace_back(std::string(field), bytes);
    b.visible_sum += bytes;
  }
  b.hidden_traced = hidden_traced;
  b.hidden_untraced = static_cast<double>(b.mem_total) - static_cast<double>(b.mem_free) -
                      static_cast<double>(b.visible_sum) - hidden_traced;
  b.untraced_parts.emplace_back(
      "held before tracing started: pages in use then with no page flag, less VmallocUsed and Percpu then",
      held_at_start);
  b.untraced_parts.emplace_back(
      "the rest: pages taken where this kernel cannot be hooked, large kmallocs held since before the start, and the "
      "error of the terms (negative: counted twice)",
      b.hidden_untraced - held_at_start);
  b.notes = {
      "vmalloc'd kernel stacks (CONFIG_VMAP_STACK) are in both KernelStack and VmallocUsed",
      "pages in per-CPU LRU batches are in no LRU list yet; pages on per-CPU free lists are in use for MemFree",
      "/proc/meminfo and apq's page walk are not read at one instant",
  };
  return b;
}

}  // namespace apq
