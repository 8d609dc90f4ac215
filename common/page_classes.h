#ifndef APQ_COMMON_PAGE_CLASSES_H_
#define APQ_COMMON_PAGE_CLASSES_H_

#include <array>
#include <functional>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "apq/v1/apq.pb.h"

namespace apq {

using PageClass = apq::v1::PageClass;
inline constexpr int kNumPageClasses = apq::v1::PageClass_ARRAYSIZE;

// "hidden", "anon", ...: the enum name, lower case, without its prefix.
std::string PageClassName(PageClass page_class);
// True for the classes some meminfo field counts.
bool IsVisibleInMeminfo(PageClass page_class);

// Pages by PageClass, and their wire form (PagesByClass: the classes that hold pages).
using ClassPageCounts = std::array<uint64_t, kNumPageClasses>;
apq::v1::PagesByClass ClassesOfPages(const ClassPageCounts& pages);
// Entries of unknown classes are left out (the aggregator refuses them first).
ClassPageCounts PagesOfClasses(const apq::v1::PagesByClass& classes);

// The name of the class holding most of the bytes (indexed by PageClass);
// "" when none holds any: the CLASS column of path tables.
std::string LargestClassName(const std::array<double, kNumPageClasses>& bytes);

// --class hidden|visible|all: which pages a view counts.
using ClassFilter = apq::v1::ClassFilter;
absl::StatusOr<ClassFilter> ParseClassFilter(absl::string_view name);
std::string ClassFilterName(ClassFilter filter);  // "hidden", "visible", "all"
bool Selected(ClassFilter filter, PageClass page_class);
// The sum of the selected classes' amounts (indexed by PageClass).
template <typename T>
T SumSelected(ClassFilter filter, const std::array<T, kNumPageClasses>& amounts) {
  T sum{};
  for (int c = 0; c < kNumPageClasses; ++c) {
    if (Selected(filter, static_cast<PageClass>(c))) sum += amounts[c];
  }
  return sum;
}

// Bits of /proc/kpageflags (Documentation/admin-guide/mm/pagemap.rst).
namespace kpf {
inline constexpr int kUptodate = 3, kDirty = 4, kLru = 5, kSlab = 7, kBuddy = 10, kAnon = 12, kSwapBacked = 14,
                     kHuge = 17, kUnevictable = 18, kNoPage = 20, kOffline = 23, kPgtable = 26, kReserved = 32;
inline bool Has(uint64_t flags, int bit) { return (flags >> bit) & 1; }
}  // namespace kpf

// The class /proc/kpageflags gives a page in use, or nullopt where no flag
// tells (kernel pages: the call path decides, see PathClassOf).
std::optional<PageClass> FlagClassOf(uint64_t kpageflags);

// The class of an unflagged page taken on this call path (function names,
// root first): kernel stacks, vmalloc, percpu chunks and large kmallocs are
// counted by meminfo; anything else is hidden.
PageClass PathClassOf(const std::vector<std::string>& root_first);

// Pages of one owner by what their flags say; `unflagged` ones take the
// class of the owner's path.
struct OwnerPageClasses {
  ClassPageCounts flagged{};
  uint64_t unflagged = 0;
};
// Its pages by class, the unflagged ones in the class of its path.
ClassPageCounts PagesByClassOf(const OwnerPageClasses& owner, PageClass unflagged_class);

// Each owner's pages by class, kept from one pass over the tracker's pfn ->
// owner table to the next. A pass reads /proc/kpageflags only for the
// chunks of the table whose owner ids changed since they were last read,
// and once more at the pass after (every chunk when `full`), so pages
// allocated since the last report are classified at every report for about
// the cost of hashing the table, and settled by the next one: a chunk with a
// page of no class flag (its owner may still be building it) is read again. A page whose
// flags change later while its owner stays keeps its old class until its
// chunk changes or the next full pass.
class PageClassTally {
 public:
  static constexpr size_t kChunkPfns = 1024;
  // Reads the kpageflags words of pfns [first, first + count) into flags;
  // returns how many it read (fewer at the end of the table).
  using FlagReader = std::function<absl::StatusOr<size_t>(uint64_t first, size_t count, uint64_t* flags)>;

  explicit PageClassTally(uint64_t pfns) : pfns_(pfns), chunks_((pfns + kChunkPfns - 1) / kChunkPfns) {}

  // One pass over owner_of_pfn (pfns long). On an error the chunks not read
  // keep their last counts, and are read again by the next pass.
  absl::Status Pass(const uint32_t* owner_of_pfn, bool full, const FlagReader& read_flags);

  // By BPF owner id; owners with no page in use are absent.
  const absl::flat_hash_map<uint32_t, OwnerPageClasses>& owners() const { return owners_; }
  uint64_t free_pages_still_owned() const { return free_pages_; }
  uint64_t pfns_read_last_pass() const { return pfns_read_; }

 private:
  // An owner's pages in one chunk, under one class (kNumPageClasses: unflagged).
  struct Count {
    uint32_t owner;
    uint32_t pages;
    uint8_t slot;
  };
  struct Chunk {
    uint64_t fingerprint = 0;  // of its owner ids when last read
    bool read = false;
    bool settled = false;  // read twice with the same owners, or read with every page flagged
    uint32_t free_pages = 0;
    std::vector<Count> counts;
  };
  void Apply(const Chunk& chunk, int sign);

  uint64_t pfns_;
  std::vector<Chunk> chunks_;
  absl::flat_hash_map<uint32_t, OwnerPageClasses> owners_;
  uint64_t free_pages_ = 0;
  uint64_t pfns_read_ = 0;
};

}  // namespace apq

#endif  // APQ_COMMON_PAGE_CLASSES_H_
