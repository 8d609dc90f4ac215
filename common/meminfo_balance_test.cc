#include "common/meminfo_balance.h"
#include "common/proto_json.h"

#include "common/explanation.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

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
  // Active/Inactive x2, Unevictable, Slab, KernelStack, PageTables, SecPageTables, VmallocUsed, Percpu, Hugetlb, Zswap,
  // Balloon.
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
  EXPECT_EQ(b->visible_sum,
            (10000 + 20000 + 30000 + 40000 + 1000 + 50000 + 2000 + 3000 + 60000 + 500 + 4096) * 1024ull);
}

TEST(MeminfoBalanceTest, MissingTotalsAreAnError) {
  absl::flat_hash_map<std::string, uint64_t> fields = {{"MemFree", 1}};
  EXPECT_FALSE(BalanceMeminfo(fields, 0, 0).ok());
}

// The fleet's equation is the sum of its hosts': a 6.18 host and a 5.10 host
// (with fields the other lacks) add up term by term, and still close.
TEST(ExplanationTest, HostsOfDifferentKernelsSumTermByTerm) {
  auto fields618 = ParseMeminfo(kMeminfo618), fields510 = ParseMeminfo(kMeminfo510NoHugetlb);
  ASSERT_TRUE(fields618.ok() && fields510.ok());
  auto b618 = BalanceMeminfo(*fields618, 20 << 20, 500 << 20), b510 = BalanceMeminfo(*fields510, 7 << 20, 3 << 20);
  ASSERT_TRUE(b618.ok() && b510.ok());
  apq::v1::Explanation host618 = ExplanationOf(*b618), host510 = ExplanationOf(*b510);
  host618.set_mode("exact");
  host618.set_classified_unix_millis(2000);
  host510.set_mode("sampled");
  host510.set_hidden_traced_standard_error(3);
  host510.set_classified_unix_millis(1000);
  apq::v1::Explanation sum;
  AddTerms(host618, &sum);
  AddTerms(host510, &sum);
  EXPECT_EQ(sum.hosts(), 2u);
  EXPECT_EQ(sum.mode(), "mixed");
  EXPECT_EQ(sum.classified_unix_millis(), 1000);
  EXPECT_EQ(sum.mem_total_bytes(), b618->mem_total + b510->mem_total);
  EXPECT_EQ(sum.visible_bytes(), b618->visible_sum + b510->visible_sum);
  EXPECT_DOUBLE_EQ(sum.hidden_traced_bytes(), (20 << 20) + (7 << 20));
  EXPECT_DOUBLE_EQ(sum.hidden_traced_standard_error(), 3);
  EXPECT_DOUBLE_EQ(sum.mem_free_bytes() + sum.visible_bytes() + sum.hidden_traced_bytes() + sum.hidden_untraced_bytes(),
                   sum.mem_total_bytes());
  // Each visible field once, summed where both hosts have it; 6.18's extra
  // fields (SecPageTables, Zswap, Balloon) stay, with their one host's bytes.
  uint64_t fields_sum = 0;
  for (const auto& [name, bytes] : sum.visible()) fields_sum += bytes;
  EXPECT_EQ(sum.visible().at("Slab"), (132328 + 50000) * 1024ull);
  EXPECT_EQ(sum.visible().at("Hugetlb"), 2u * 2048 * 1024);
  EXPECT_EQ(sum.visible_size(), 14);
  EXPECT_EQ(fields_sum, sum.visible_bytes());
  ASSERT_EQ(sum.hidden_untraced_parts_size(), 2);
  EXPECT_DOUBLE_EQ(sum.hidden_untraced_parts(0).bytes(), (500 << 20) + (3 << 20));
  EXPECT_DOUBLE_EQ(sum.hidden_untraced_parts(0).bytes() + sum.hidden_untraced_parts(1).bytes(),
                   sum.hidden_untraced_bytes());
  EXPECT_EQ(sum.notes_size(), host618.notes_size());  // the same reasons, once
}

TEST(ExplanationTest, JsonCarriesTheTermsPathsAndHolders) {
  auto fields = ParseMeminfo(kMeminfo618);
  ASSERT_TRUE(fields.ok());
  auto b = BalanceMeminfo(*fields, 4096, 0);
  ASSERT_TRUE(b.ok());
  apq::v1::Explanation e = ExplanationOf(*b);
  apq::v1::ExplainedPath* path = e.add_paths();
  path->add_frames("vfs_write");
  path->add_frames("anon_pipe_write");
  path->set_bytes(4096);
  apq::v1::PathHolder* holder = path->add_processes();
  holder->set_host("h1");
  holder->set_tgid(42);
  holder->set_comm("writer");
  holder->set_bytes(4096);
  // Its json is the message's (proto field names; 64-bit integers as strings).
  absl::StatusOr<std::string> json = ProtoJson(e);
  ASSERT_TRUE(json.ok());
  nlohmann::json j = nlohmann::json::parse(*json);
  EXPECT_EQ(j["mem_total_bytes"], std::to_string(b->mem_total));
  EXPECT_EQ(j["visible"]["Slab"], std::to_string(132328u * 1024));
  EXPECT_EQ(j["hidden_untraced_parts"].size(), 2u);
  EXPECT_EQ(j["paths"][0]["frames"][1], "anon_pipe_write");
  EXPECT_EQ(j["paths"][0]["processes"][0]["host"], "h1");
  EXPECT_EQ(j["paths"][0]["processes"][0]["tgid"], 42);
  const std::string table = FormatExplanationTable(e);
  EXPECT_NE(table.find("anon_pipe_write <- vfs_write"), std::string::npos) << table;
  EXPECT_NE(table.find("host h1 pid 42 writer"), std::string::npos) << table;
}

}  // namespace
}  // namespace apq
