#include "common/page_classes.h"

#include <algorithm>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace apq {
namespace {

// Call paths whose unflagged pages a meminfo field counts, first match wins
// (a kernel stack is vmalloc'd: it is counted as a stack). Names as 5.10 to
// 6.18 spell them, with the _noprof suffix removed.
struct PathRule {
  PageClass page_class;
  std::vector<absl::string_view> functions;
};
const std::vector<PathRule>& PathRules() {
  static const auto* rules = new std::vector<PathRule>{
      {apq::v1::PAGE_CLASS_KERNEL_STACK, {"alloc_thread_stack_node"}},
      {apq::v1::PAGE_CLASS_PERCPU, {"pcpu_populate_chunk", "pcpu_alloc_pages"}},
      {apq::v1::PAGE_CLASS_VMALLOC,
       {"__vmalloc_node_range", "__vmalloc_area_node", "vm_area_alloc_pages", "__vmalloc_node", "vmalloc_huge"}},
      // Large kmallocs go straight to the page allocator but are counted in
      // Slab (SUnreclaim) since 5.7.
      {apq::v1::PAGE_CLASS_SLAB,
       {"kmalloc_order", "kmalloc_order_trace", "kmalloc_large", "kmalloc_large_node", "__kmalloc_large_node",
        "___kmalloc_large_node"}},
  };
  return *rules;
}

}  // namespace

std::string PageClassName(PageClass page_class) {
  absl::string_view name = apq::v1::PageClass_Name(page_class);
  absl::ConsumePrefix(&name, "PAGE_CLASS_");
  return absl::AsciiStrToLower(name);
}

std::string LargestClassName(const std::array<double, kNumPageClasses>& bytes) {
  const auto largest = std::max_element(bytes.begin(), bytes.end());
  return *largest > 0 ? PageClassName(static_cast<PageClass>(largest - bytes.begin())) : "";
}

bool IsVisibleInMeminfo(PageClass page_class) {
  return page_class != apq::v1::PAGE_CLASS_HIDDEN && page_class != apq::v1::PAGE_CLASS_UNKNOWN;
}

apq::v1::PagesByClass ClassesOfPages(const ClassPageCounts& pages) {
  apq::v1::PagesByClass classes;
  for (int c = 0; c < kNumPageClasses; ++c) {
    if (pages[c] == 0) continue;
    apq::v1::ClassPages* entry = classes.add_classes();
    entry->set_page_class(static_cast<PageClass>(c));
    entry->set_pages(pages[c]);
  }
  return classes;
}

ClassPageCounts PagesOfClasses(const apq::v1::PagesByClass& classes) {
  ClassPageCounts pages{};
  for (const apq::v1::ClassPages& entry : classes.classes()) {
    if (apq::v1::PageClass_IsValid(entry.page_class())) pages[entry.page_class()] = entry.pages();
  }
  return pages;
}

ClassPageCounts PagesByClassOf(const OwnerPageClasses& owner, PageClass unflagged_class) {
  ClassPageCounts pages = owner.flagged;
  pages[unflagged_class] += owner.unflagged;
  return pages;
}

absl::StatusOr<ClassFilter> ParseClassFilter(absl::string_view name) {
  for (ClassFilter filter : {apq::v1::CLASS_FILTER_HIDDEN, apq::v1::CLASS_FILTER_VISIBLE, apq::v1::CLASS_FILTER_ALL}) {
    if (name == ClassFilterName(filter)) return filter;
  }
  return absl::InvalidArgumentError(absl::StrCat("--class must be hidden, visible or all, not '", name, "'"));
}

std::string ClassFilterName(ClassFilter filter) {
  absl::string_view name = apq::v1::ClassFilter_Name(filter);
  absl::ConsumePrefix(&name, "CLASS_FILTER_");
  return absl::AsciiStrToLower(name);
}

bool Selected(ClassFilter filter, PageClass page_class) {
  switch (filter) {
    // Only what is known to be hidden: a page not classified yet may be
    // page cache or anonymous memory.
    case apq::v1::CLASS_FILTER_HIDDEN:
      return page_class == apq::v1::PAGE_CLASS_HIDDEN;
    case apq::v1::CLASS_FILTER_VISIBLE:
      return IsVisibleInMeminfo(page_class);
    default:
      return true;
  }
}

std::optional<PageClass> FlagClassOf(uint64_t f) {
  if (kpf::Has(f, kpf::kSlab)) return apq::v1::PAGE_CLASS_SLAB;
  if (kpf::Has(f, kpf::kPgtable)) return apq::v1::PAGE_CLASS_PAGE_TABLES;
  if (kpf::Has(f, kpf::kHuge) && !kpf::Has(f, kpf::kLru)) return apq::v1::PAGE_CLASS_HUGETLB;
  if (kpf::Has(f, kpf::kUnevictable)) return apq::v1::PAGE_CLASS_UNEVICTABLE;
  // Anonymous and shmem (swap-backed) pages are on the anon LRU lists. A
  // page still in a per-CPU LRU batch has no LRU bit yet: ANON or
  // SWAPBACKED tell it anyway, and a page cache page is up to date or dirty,
  // which no page-allocator user without a mapping marks its pages.
  if (kpf::Has(f, kpf::kAnon) || kpf::Has(f, kpf::kSwapBacked)) return apq::v1::PAGE_CLASS_ANON;
  if (kpf::Has(f, kpf::kLru) || kpf::Has(f, kpf::kUptodate) || kpf::Has(f, kpf::kDirty))
    return apq::v1::PAGE_CLASS_FILE;
  return std::nullopt;
}

PageClass PathClassOf(const std::vector<std::string>& root_first) {
  for (const PathRule& rule : PathRules()) {
    for (const std::string& frame : root_first) {
      absl::string_view name = frame;
      absl::ConsumeSuffix(&name, "_noprof");
      if (std::find(rule.functions.begin(), rule.functions.end(), name) != rule.functions.end()) {
        return rule.page_class;
      }
    }
  }
  return apq::v1::PAGE_CLASS_HIDDEN;
}

absl::Status PageClassTally::Pass(const uint32_t* owner_of_pfn, bool full, const FlagReader& read_flags) {
  pfns_read_ = 0;
  std::vector<uint32_t> owners(kChunkPfns);
  std::vector<uint64_t> flags(kChunkPfns);
  for (size_t i = 0; i < chunks_.size(); ++i) {
    const uint64_t first = i * kChunkPfns;
    const size_t count = static_cast<size_t>(std::min<uint64_t>(kChunkPfns, pfns_ - first));
    // A copy: the tracker writes the table while it is read, and the counts
    // must be of the ids fingerprinted.
    std::copy_n(owner_of_pfn + first, count, owners.begin());
    const bool owned = std::any_of(owners.begin(), owners.begin() + count, [](uint32_t owner) { return owner != 0; });
    const uint64_t fingerprint = owned ? absl::Hash<absl::string_view>{}(absl::string_view(
                                             reinterpret_cast<const char*>(owners.data()), count * sizeof(uint32_t)))
                                       : 0;
    Chunk& chunk = chunks_[i];
    const bool same_owners = chunk.read && chunk.fingerprint == fingerprint;
    if (same_owners && chunk.settled && (!full || !owned)) continue;
    // Read with new owners, a chunk is read once more at the next pass if
    // one of its owned pages may still be being built: one of no class flag
    // (page cache not yet up to date, an anonymous page not yet mapped),
    // which would otherwise be left to its path's class until the next full
    // pass, or one up to date but on no LRU list (an anonymous page is
    // marked up to date before it is mapped). Slab, page tables, hugetlb,
    // unevictable and LRU pages are what they will stay.
    Chunk next{fingerprint, true, same_owners, 0, {}};
    bool unsettled = false;
    if (owned) {
      absl::StatusOr<size_t> read = read_flags(first, count, flags.data());
      if (!read.ok()) return read.status();
      pfns_read_ += *read;
      absl::flat_hash_map<std::pair<uint32_t, uint8_t>, uint32_t> pages;
      for (size_t j = 0; j < *read && j < count; ++j) {
        if (owners[j] == 0) continue;  // APQ_OWNER_NONE
        const uint64_t f = flags[j];
        // An allocated kernel page may carry no flag at all (a pipe buffer
        // does): only BUDDY and NOPAGE say a page is not in use.
        if (kpf::Has(f, kpf::kBuddy) || kpf::Has(f, kpf::kNoPage)) {
          ++next.free_pages;
          continue;
        }
        const std::optional<PageClass> page_class = FlagClassOf(f);
        // Up to date but on no LRU list yet: a page cache page, or an
        // anonymous page before it is mapped (marked up to date first).
        unsettled |= !page_class || (*page_class == apq::v1::PAGE_CLASS_FILE && !kpf::Has(f, kpf::kLru));
        ++pages[{owners[j], static_cast<uint8_t>(page_class ? *page_class : kNumPageClasses)}];
      }
      next.settled = same_owners || !unsettled;
      next.counts.reserve(pages.size());
      for (const auto& [key, n] : pages) next.counts.push_back({key.first, n, key.second});
    }
    Apply(chunk, -1);
    Apply(next, +1);
    chunk = std::move(next);
  }
  return absl::OkStatus();
}

void PageClassTally::Apply(const Chunk& chunk, int sign) {
  const auto add = [sign](uint64_t& total, uint32_t n) { total = sign > 0 ? total + n : total - n; };
  add(free_pages_, chunk.free_pages);
  for (const Count& count : chunk.counts) {
    OwnerPageClasses& owner = owners_[count.owner];
    add(count.slot == kNumPageClasses ? owner.unflagged : owner.flagged[count.slot], count.pages);
    if (sign < 0 && owner.unflagged == 0 &&
        std::all_of(owner.flagged.begin(), owner.flagged.end(), [](uint64_t n) { return n == 0; })) {
      owners_.erase(count.owner);
    }
  }
}

}  // namespace apq
