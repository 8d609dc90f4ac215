#include "common/page_classes.h"

#include <random>

#include "gtest/gtest.h"

namespace apq {
namespace {

uint64_t Bits(std::initializer_list<int> bits) {
  uint64_t f = 0;
  for (int b : bits) f |= uint64_t{1} << b;
  return f;
}

TEST(PageClassesTest, NamesComeFromTheWireEnum) {
  EXPECT_EQ(PageClassName(apq::v1::PAGE_CLASS_HIDDEN), "hidden");
  EXPECT_EQ(PageClassName(apq::v1::PAGE_CLASS_PAGE_TABLES), "page_tables");
  EXPECT_FALSE(IsVisibleInMeminfo(apq::v1::PAGE_CLASS_HIDDEN));
  EXPECT_FALSE(IsVisibleInMeminfo(apq::v1::PAGE_CLASS_UNKNOWN));
  EXPECT_TRUE(IsVisibleInMeminfo(apq::v1::PAGE_CLASS_VMALLOC));
}

TEST(PageClassesTest, FlagsDecideWhereTheyCan) {
  using namespace kpf;
  EXPECT_EQ(FlagClassOf(Bits({kSlab})), apq::v1::PAGE_CLASS_SLAB);
  EXPECT_EQ(FlagClassOf(Bits({kPgtable})), apq::v1::PAGE_CLASS_PAGE_TABLES);
  EXPECT_EQ(FlagClassOf(Bits({kHuge, 15})), apq::v1::PAGE_CLASS_HUGETLB);            // hugetlb head
  EXPECT_EQ(FlagClassOf(Bits({kHuge, kLru, kAnon, 22})), apq::v1::PAGE_CLASS_ANON);  // THP
  EXPECT_EQ(FlagClassOf(Bits({kLru, kUnevictable, kAnon})), apq::v1::PAGE_CLASS_UNEVICTABLE);
  EXPECT_EQ(FlagClassOf(Bits({kLru, kAnon, kSwapBacked})), apq::v1::PAGE_CLASS_ANON);
  EXPECT_EQ(FlagClassOf(Bits({kLru, kSwapBacked})), apq::v1::PAGE_CLASS_ANON);       // shmem
  EXPECT_EQ(FlagClassOf(Bits({kAnon, kSwapBacked})), apq::v1::PAGE_CLASS_ANON);      // not on the LRU yet
  EXPECT_EQ(FlagClassOf(Bits({kSwapBacked, kUptodate})), apq::v1::PAGE_CLASS_ANON);  // shmem, not on the LRU yet
  EXPECT_EQ(FlagClassOf(Bits({kLru})), apq::v1::PAGE_CLASS_FILE);
  EXPECT_EQ(FlagClassOf(Bits({kUptodate, kDirty})),
            apq::v1::PAGE_CLASS_FILE);               // written page cache, not on the LRU yet
  EXPECT_EQ(FlagClassOf(0), std::nullopt);           // a pipe buffer page
  EXPECT_EQ(FlagClassOf(Bits({15})), std::nullopt);  // head of a large kmalloc
}

TEST(PageClassesTest, PathsDecideUnflaggedPages) {
  EXPECT_EQ(PathClassOf({"do_syscall_64", "ksys_write", "vfs_write", "anon_pipe_write"}), apq::v1::PAGE_CLASS_HIDDEN);
  EXPECT_EQ(PathClassOf({"__x64_sys_bpf", "bpf_map_area_alloc", "__vmalloc_node_range_noprof", "vm_area_alloc_pages"}),
            apq::v1::PAGE_CLASS_VMALLOC);
  EXPECT_EQ(PathClassOf({"kernel_clone", "copy_process", "alloc_thread_stack_node", "__vmalloc_node_range"}),
            apq::v1::PAGE_CLASS_KERNEL_STACK);
  EXPECT_EQ(PathClassOf({"pcpu_balance_workfn", "pcpu_populate_chunk"}), apq::v1::PAGE_CLASS_PERCPU);
  EXPECT_EQ(PathClassOf({"pipe_fcntl", "pipe_resize_ring", "__kmalloc", "__kmalloc_large_node"}),
            apq::v1::PAGE_CLASS_SLAB);  // 6.6
  EXPECT_EQ(PathClassOf({"pipe_fcntl", "pipe_resize_ring", "kmalloc_order_trace", "kmalloc_order"}),
            apq::v1::PAGE_CLASS_SLAB);  // 5.10
  EXPECT_EQ(PathClassOf({"pipe_fcntl", "pipe_resize_ring", "___kmalloc_large_node"}), apq::v1::PAGE_CLASS_SLAB);
}

// Reads kpageflags words from a vector standing for /proc/kpageflags.
PageClassTally::FlagReader ReaderOf(const std::vector<uint64_t>& kpageflags) {
  return [&kpageflags](uint64_t first, size_t count, uint64_t* flags) -> absl::StatusOr<size_t> {
    const size_t n = std::min<size_t>(count, kpageflags.size() - first);
    std::copy_n(kpageflags.begin() + static_cast<ptrdiff_t>(first), n, flags);
    return n;
  };
}

TEST(PageClassesTest, OwnedPagesAreCountedByFlagsOrLeftToTheirPath) {
  using namespace kpf;
  const std::vector<uint32_t> owners = {0, 2, 2, 2, 3, 3, 2};
  const std::vector<uint64_t> flags = {Bits({kSlab}), 0, Bits({kLru, kAnon}), Bits({kBuddy}),
                                       Bits({kSlab}), 0, Bits({kNoPage})};
  PageClassTally tally(owners.size());
  ASSERT_TRUE(tally.Pass(owners.data(), /*full=*/false, ReaderOf(flags)).ok());
  EXPECT_EQ(tally.free_pages_still_owned(), 2u);
  const auto& classes = tally.owners();
  ASSERT_EQ(classes.size(), 2u);
  EXPECT_EQ(classes.at(2).unflagged, 1u);
  EXPECT_EQ(classes.at(2).flagged[apq::v1::PAGE_CLASS_ANON], 1u);
  EXPECT_EQ(classes.at(3).unflagged, 1u);
  EXPECT_EQ(classes.at(3).flagged[apq::v1::PAGE_CLASS_SLAB], 1u);
}

bool SameCounts(const absl::flat_hash_map<uint32_t, OwnerPageClasses>& a,
                const absl::flat_hash_map<uint32_t, OwnerPageClasses>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [owner, classes] : a) {
    auto other = b.find(owner);
    if (other == b.end() || other->second.unflagged != classes.unflagged || other->second.flagged != classes.flagged) {
      return false;
    }
  }
  return true;
}

// After any change of owners (and of the changed pages' flags), a pass that
// reads only the changed chunks counts what a first pass over the whole
// table counts, and reads nothing when nothing changed.
TEST(PageClassesTest, TallyReadsOnlyChangedChunksAndAgreesWithAFreshOne) {
  using namespace kpf;
  const uint64_t kPfns = 10 * PageClassTally::kChunkPfns + 77;  // the last chunk partial
  const uint64_t kFlagChoices[] = {
      0, Bits({kSlab}), Bits({kLru, kAnon}), Bits({kLru}), Bits({kBuddy}), Bits({kPgtable})};
  std::mt19937_64 random(17);
  std::vector<uint32_t> owners(kPfns);
  std::vector<uint64_t> flags(kPfns);
  for (uint64_t pfn = 0; pfn < kPfns; ++pfn) {
    if (random() % 3 == 0) owners[pfn] = 1 + random() % 40;
    flags[pfn] = kFlagChoices[random() % std::size(kFlagChoices)];
  }
  PageClassTally kept(kPfns);
  ASSERT_TRUE(kept.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_GT(kept.pfns_read_last_pass(), 0u);
  ASSERT_TRUE(kept.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_GT(kept.pfns_read_last_pass(), 0u) << "new owners' chunks are read once more, to settle";
  ASSERT_TRUE(kept.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_EQ(kept.pfns_read_last_pass(), 0u) << "nothing changed";
  for (int round = 0; round < 50; ++round) {
    // Allocations and frees in a few chunks: new owners, cleared entries.
    const uint64_t chunk = random() % 11;
    for (int change = 0; change < 20; ++change) {
      const uint64_t pfn =
          std::min(kPfns - 1, chunk * PageClassTally::kChunkPfns + random() % PageClassTally::kChunkPfns);
      owners[pfn] = random() % 2 ? 0 : static_cast<uint32_t>(1 + random() % 60);
      flags[pfn] = kFlagChoices[random() % std::size(kFlagChoices)];
    }
    ASSERT_TRUE(kept.Pass(owners.data(), false, ReaderOf(flags)).ok());
    EXPECT_LE(kept.pfns_read_last_pass(), 2 * PageClassTally::kChunkPfns)
        << "only the chunk changed now and the one changed a pass before are read";
    PageClassTally fresh(kPfns);
    ASSERT_TRUE(fresh.Pass(owners.data(), false, ReaderOf(flags)).ok());
    ASSERT_TRUE(SameCounts(kept.owners(), fresh.owners())) << "round " << round;
    ASSERT_EQ(kept.free_pages_still_owned(), fresh.free_pages_still_owned()) << "round " << round;
  }
}

// A page read while its owner was still building it (page cache not yet up
// to date: no flag) is read again at the next pass; flags that change later
// under the same owner are seen by the next full pass.
TEST(PageClassesTest, FlagsChangedUnderTheSameOwnerAreSeenByTheNextPassThenByAFullPass) {
  using namespace kpf;
  std::vector<uint32_t> owners = {5, 5};
  std::vector<uint64_t> flags = {0, 0};
  PageClassTally tally(owners.size());
  ASSERT_TRUE(tally.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_EQ(tally.owners().at(5).unflagged, 2u);
  flags[1] = Bits({kLru});
  ASSERT_TRUE(tally.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_EQ(tally.owners().at(5).unflagged, 1u) << "settled by the pass after the owners changed";
  EXPECT_EQ(tally.owners().at(5).flagged[apq::v1::PAGE_CLASS_FILE], 1u);
  flags[0] = Bits({kUptodate});
  ASSERT_TRUE(tally.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_EQ(tally.pfns_read_last_pass(), 0u) << "settled: read again only by a full pass";
  EXPECT_EQ(tally.owners().at(5).unflagged, 1u);
  ASSERT_TRUE(tally.Pass(owners.data(), /*full=*/true, ReaderOf(flags)).ok());
  EXPECT_EQ(tally.owners().at(5).unflagged, 0u);
  EXPECT_EQ(tally.owners().at(5).flagged[apq::v1::PAGE_CLASS_FILE], 2u);
  owners = {0, 0};
  ASSERT_TRUE(tally.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_TRUE(tally.owners().empty()) << "an owner with no page is dropped";
}

// Pages on an LRU list (or slab, page tables...) are not being built: a
// chunk of only such pages, read with new owners, is not read again by the
// next pass (the start-up pass would otherwise be paid twice).
TEST(PageClassesTest, ChunksWhosePagesAllCarryAClassFlagAreSettledAtOnce) {
  using namespace kpf;
  const uint64_t kPfns = 2 * PageClassTally::kChunkPfns;
  std::vector<uint32_t> owners(kPfns, 4);
  std::vector<uint64_t> flags(kPfns, Bits({kLru, kAnon}));
  flags[PageClassTally::kChunkPfns + 3] = 0;  // the second chunk has one page of no flag
  PageClassTally tally(kPfns);
  ASSERT_TRUE(tally.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_EQ(tally.pfns_read_last_pass(), kPfns);
  flags[PageClassTally::kChunkPfns + 3] = Bits({kLru, kAnon});  // mapped since
  ASSERT_TRUE(tally.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_EQ(tally.pfns_read_last_pass(), PageClassTally::kChunkPfns) << "only the chunk with an unflagged page";
  EXPECT_EQ(tally.owners().at(4).flagged[apq::v1::PAGE_CLASS_ANON], kPfns);
  EXPECT_EQ(tally.owners().at(4).unflagged, 0u);
  ASSERT_TRUE(tally.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_EQ(tally.pfns_read_last_pass(), 0u);
  // An anonymous page is marked up to date before it is mapped: up to date
  // on no LRU list, it is read again, and counted as anon once mapped.
  owners[7] = 6;
  flags[7] = Bits({kUptodate});
  ASSERT_TRUE(tally.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_EQ(tally.owners().at(6).flagged[apq::v1::PAGE_CLASS_FILE], 1u);
  flags[7] = Bits({kUptodate, kAnon, kSwapBacked});
  ASSERT_TRUE(tally.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_EQ(tally.pfns_read_last_pass(), PageClassTally::kChunkPfns);
  EXPECT_EQ(tally.owners().at(6).flagged[apq::v1::PAGE_CLASS_ANON], 1u);
  EXPECT_EQ(tally.owners().at(6).flagged[apq::v1::PAGE_CLASS_FILE], 0u);
}

// A read that fails leaves the chunks it did not read to the next pass.
TEST(PageClassesTest, AFailedReadIsMadeGoodByTheNextPass) {
  const uint64_t kPfns = 3 * PageClassTally::kChunkPfns;
  std::vector<uint32_t> owners(kPfns, 9);
  std::vector<uint64_t> flags(kPfns, 0);
  PageClassTally tally(kPfns);
  int reads = 0;
  auto failing_second = [&](uint64_t first, size_t count, uint64_t* out) -> absl::StatusOr<size_t> {
    if (++reads == 2) return absl::UnavailableError("read /proc/kpageflags: EIO");
    return ReaderOf(flags)(first, count, out);
  };
  EXPECT_FALSE(tally.Pass(owners.data(), false, failing_second).ok());
  EXPECT_EQ(tally.owners().at(9).unflagged, PageClassTally::kChunkPfns);
  ASSERT_TRUE(tally.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_EQ(tally.pfns_read_last_pass(), kPfns) << "the two not read, and the one read to settle";
  EXPECT_EQ(tally.owners().at(9).unflagged, kPfns);
  ASSERT_TRUE(tally.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_EQ(tally.pfns_read_last_pass(), 2 * PageClassTally::kChunkPfns) << "the two read last pass, to settle";
  ASSERT_TRUE(tally.Pass(owners.data(), false, ReaderOf(flags)).ok());
  EXPECT_EQ(tally.pfns_read_last_pass(), 0u);
}

}  // namespace
}  // namespace apq
