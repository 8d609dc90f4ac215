#include "common/meminfo_balance.h"

#include "gtest/gtest.h"

namespace apq {
namespace {

// Recorded on this VM (6.18), trimmed of fields the balance does not read.
constexpr char kMeminfo618[] = R"(MemTotal:       24683584 kB
MemFree:        22847504 kB
Buffers:            4556 kB
Cached:          1313260 kB
Active(anon):       1512 kB
Inactive(anon):    88464 kB
Active(file):     437148 kB
Inactive(file):   871308 kB
Unevictable:       10668 kB
Zswap:                 0 kB
AnonPages:         91324 kB
Slab:             132328 kB
SReclaimable:     104224 kB
KernelStack:        1424 kB
PageTables:         2328 kB
SecPageTables:         0 kB
VmallocUsed:      178020 kB
Percpu:              848 kB
Balloon:               0 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
Hugetlb:               0 kB
)";

// The fields of a 5.10 kernel (openEuler 22.03): no SecPageTables, Zswap or
// Balloon; an old kernel without Hugetlb falls back to the default pool.
constexpr char kMeminfo510NoHugetlb[] = R"(MemTotal:        3000000 kB
MemFree:         2000000 kB
Active(anon):      10000 kB
Inactive(anon):    20000 kB
Active(file):      30000 kB
Inactive(file):    40000 kB
Unevictable:        1000 kB
Slab:              50000 kB
KernelStack:        2000 kB
PageTables:         3000 kB
VmallocUsed:       60000 kB
Percpu:              500 kB
HugePages_Total:       2
Hugepagesize:       2048 kB
)";

TEST(MeminfoBalanceTest, ParsesKibibytesAndCounts) {
  auto fields = ParseMeminfo(kMeminfo618);
  ASSERT_TRUE(fields.ok()) << fields.status();
  EXPECT_EQ((*fields)["MemTotal"], uint64_t{24683584} * 1024);
  EXPECT_EQ((*fields)["HugePages_Total"], 0u);
  EXPECT_FALSE(ParseMeminfo("MemTotal: lots kB\n").ok());
  EXPECT_FALSE(ParseMeminfo("no colon here\n").ok());
}

TEST(MeminfoBalanceTest, ClosesOnTheRecorded618Sample) {
  auto fields = ParseMeminfo(kMeminfo618);
  ASSERT_TRUE(fields.ok());
  const double hidden_traced = 20 << 20;
  auto b = BalanceMeminfo(*fields, hidden_traced, 500 << 20);
  ASSERT_TRUE(b.ok()) << b.status();
  // Active/Inactive x2, Unevictable, Slab, KernelStack, PageTables, SecPageTables, VmallocUsed, Percpu, Hugetlb, Zswap, Balloon.
  EXPECT_EQ(b->visible.size(), 14u);
  const uint64_t visible_kib = 1512 + 88464 + 437148 + 871308 + 10668 + 132328 + 1424 + 2328 + 178020 + 848;
  EXPECT_EQ(b->visible_sum, visible_kib * 1024);
  const double untraced = (24683584.0 - 22847504.0 - visible_kib) * 1024 - hidden_traced;
  EXPECT_DOUBLE_EQ(b->hidden_untraced, untraced);
  // The equation holds by construction: every term is shown.
  EXPECT_DOUBLE_EQ(b->mem_free + b->visible_sum + b->hidden_traced + b->hidden_untraced, b->mem_total);
  ASSERT_EQ(b->untraced_parts.size(), 2u);
  EXPECT_DOUBLE_EQ(b->untraced_parts[0].second, 500 << 20);
  EXPECT_DOUBLE_EQ(b->untraced_parts[0].second + b->untraced_parts[1].second, b->hidden_untraced);
  // Parts of other fields are never counted again.
  for (const auto& [field, bytes] : b->visible) {
    EXPECT_NE(field, "Cached");
    EXPECT_NE(field, "AnonPages");
    EXPECT_NE(field, "SReclaimable");
  }
}

TEST(MeminfoBalanceTest, OlderKernelsFallBackToTheHugepagePool) {
  auto fields = ParseMeminfo(kMeminfo510NoHugetlb);
  ASSERT_TRUE(fields.ok());
  auto b = BalanceMeminfo(*fields, 0, 0);
  ASSERT_TRUE(b.ok());
  bool hugetlb = false;
  for (const auto& [field, bytes] : b->visible) {
    if (field == "Hugetlb") {
      hugetlb = true;
      EXPECT_EQ(bytes, 2u * 2048 * 1024);
    }
  }
  EXPECT_TRUE(hugetlb);
  EXPECT_EQ(b->visible_sum, (10000 + 20000 + 30000 + 40000 + 1000 + 50000 + 2000 + 3000 + 60000 + 500 + 4096) * 1024ull);
}

TEST(MeminfoBalanceTest, MissingTotalsAreAnError) {
  absl::flat_hash_map<std::string, uint64_t> fields = {{"MemFree", 1}};
  EXPECT_FALSE(BalanceMeminfo(fields, 0, 0).ok());
}

}  // namespace
}  // namespace apq
