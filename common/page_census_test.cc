#include "common/page_census.h"

#include "common/meminfo_balance.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

uint64_t Bit(int b) { return uint64_t{1} << b; }

TEST(PageCensusTest, ClassifiesByFlags) {
  const uint64_t flags[] = {
      Bit(7),            // slab
      Bit(7) | Bit(5),   // slab wins
      Bit(26),           // page table
      Bit(12) | Bit(5),  // anon on LRU
      Bit(5),            // page cache
      Bit(10),           // free buddy head: not counted
      0,                 // buddy tail or hidden kernel page: not counted, but attributed when charged
      Bit(20),           // no page
      Bit(32),           // reserved
      Bit(17),           // hugetlb
  };
  const uint64_t memcgs[] = {0, 0, 0, 0, 0, 0, 42, 0, 0, 0};  // the unflagged page is charged to memcg 42
  PageCensus census = ClassifyKpageflags(flags, memcgs, std::size(flags), 100);
  auto pages = [&](absl::string_view name) {
    for (const auto& c : census.classes)
      if (c.name == name) return c.pages;
    ADD_FAILURE() << "no class " << name;
    return uint64_t{0};
  };
  EXPECT_EQ(pages("slab"), 2u);
  EXPECT_EQ(pages("page_tables"), 1u);
  EXPECT_EQ(pages("anon"), 1u);
  EXPECT_EQ(pages("file"), 1u);
  EXPECT_EQ(pages("reserved"), 1u);
  EXPECT_EQ(pages("hugetlb"), 1u);
  // Reserved pages are outside MemTotal: not taken from the pages in use.
  EXPECT_EQ(census.Classified(), 6u);
  EXPECT_EQ(census.Unclassified(), 94u);
  ASSERT_EQ(census.unflagged_pages_by_memcg.size(), 1u);
  EXPECT_EQ(census.unflagged_pages_by_memcg[42], 1u);
  // Without kpagecgroup nothing is attributed.
  EXPECT_TRUE(ClassifyKpageflags(flags, nullptr, std::size(flags), 100).unflagged_pages_by_memcg.empty());
}

TEST(PageCensusTest, MeminfoInUse) {
  auto in_use = [](absl::string_view text) -> absl::StatusOr<uint64_t> {
    absl::StatusOr<absl::flat_hash_map<std::string, uint64_t>> fields = ParseMeminfo(text);
    if (!fields.ok()) return fields.status();
    return InUsePages(*fields);
  };
  absl::StatusOr<uint64_t> pages = in_use("MemTotal:       1000 kB\nMemFree:         200 kB\nCached: 5 kB\n");
  ASSERT_TRUE(pages.ok()) << pages.status();
  EXPECT_EQ(*pages, 200u);
  EXPECT_FALSE(in_use("MemTotal: 1000 kB\n").ok());
  EXPECT_FALSE(in_use("MemTotal: x kB\nMemFree: 1 kB\n").ok());
}

}  // namespace
}  // namespace apq
