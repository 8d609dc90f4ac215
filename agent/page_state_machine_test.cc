// The BPF tracker's per-page state machine, compiled against in-memory maps.
#include <array>
#include <vector>

#include "gtest/gtest.h"
#include "agent/tracker_snapshot.h"
#include "page_tracker.h"

using apq::PagesFreed;

namespace {

struct FakeMaps {
  std::vector<__u32> page_owner;
  std::vector<apq_owner_counters> owner_counters;
  std::array<__u64, APQ_NR_COUNTERS> counters{};
};
FakeMaps* maps = nullptr;

__u32* PageSlot(__u64 pfn) { return pfn < maps->page_owner.size() ? &maps->page_owner[pfn] : nullptr; }
apq_owner_counters* OwnerCounters(__u32 id) {
  return id < maps->owner_counters.size() ? &maps->owner_counters[id] : nullptr;
}

}  // namespace

#define APQ_PAGE_SLOT(pfn) PageSlot(pfn)
#define APQ_PAGE_TABLE_SIZE maps->page_owner.size()
#define APQ_OWNER_COUNTERS(id) OwnerCounters(id)
#define APQ_ATOMIC_ADD(ptr, val) (*(ptr) += (val))
#define APQ_COUNT(which, n) (maps->counters[(which)] += (n))
#include "page_state_machine.h"

namespace {

class PageStateMachineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_.page_owner.assign(4096, APQ_OWNER_NONE);
    state_.owner_counters.assign(16, apq_owner_counters{});
    maps = &state_;
  }
  void TearDown() override { maps = nullptr; }
  const apq_owner_counters& Owner(__u32 id) const { return state_.owner_counters[id]; }
  __u64 Counter(apq_counter which) const { return state_.counters[which]; }

  FakeMaps state_;
};

constexpr __u32 kA = APQ_FIRST_OWNER_ID, kB = APQ_FIRST_OWNER_ID + 1;

TEST_F(PageStateMachineTest, HighOrderAllocationFreedWhole) {
  apq_claim_pages(64, 3, kA);
  EXPECT_EQ(Owner(kA).pages_outstanding, 8);
  EXPECT_EQ(Owner(kA).pages_allocated, 8u);
  EXPECT_EQ(Owner(kA).allocations, 1u);
  for (__u64 pfn = 64; pfn < 72; ++pfn) EXPECT_EQ(state_.page_owner[pfn], kA);
  apq_release_pages(64, 3);
  EXPECT_EQ(Owner(kA).pages_outstanding, 0);
  EXPECT_EQ(PagesFreed(Owner(kA)), 8u);
  EXPECT_EQ(Counter(APQ_CTR_FREE_UNKNOWN_PAGES), 0u);
}

TEST_F(PageStateMachineTest, SplitPageFreedOneByOne) {
  apq_claim_pages(128, 2, kA);  // split_page(): four order-0 frees follow
  for (__u64 pfn = 128; pfn < 132; ++pfn) {
    apq_release_pages(pfn, 0);
    EXPECT_EQ(Owner(kA).pages_outstanding, static_cast<__s64>(131 - pfn));
  }
  EXPECT_EQ(Counter(APQ_CTR_FREE_UNKNOWN_PAGES), 0u);
}

TEST_F(PageStateMachineTest, ExactAllocationTailFreedFirst) {
  // alloc_pages_exact(3 pages): one order-2 allocation, the fourth page
  // freed at once as order 0, the rest later.
  apq_claim_pages(256, 2, kA);
  apq_release_pages(259, 0);
  EXPECT_EQ(Owner(kA).pages_outstanding, 3);
  apq_release_pages(256, 1);
  apq_release_pages(258, 0);
  EXPECT_EQ(Owner(kA).pages_outstanding, 0);
  EXPECT_EQ(PagesFreed(Owner(kA)), 4u);
}

TEST_F(PageStateMachineTest, PartialFreeOfNonCompoundPage) {
  // __free_pages on a non-compound order-2 page with a reference held: the
  // tail goes at once as order 1 + order 0, the head later as order 0.
  apq_claim_pages(512, 2, kA);
  apq_release_pages(514, 1);
  apq_release_pages(513, 0);
  EXPECT_EQ(Owner(kA).pages_outstanding, 1);
  EXPECT_EQ(state_.page_owner[512], kA);
  apq_release_pages(512, 0);
  EXPECT_EQ(Owner(kA).pages_outstanding, 0);
}

TEST_F(PageStateMachineTest, FreeSpanningTwoOwnersReleasesEach) {
  apq_claim_pages(1024, 0, kA);
  apq_claim_pages(1025, 0, kB);
  apq_release_pages(1024, 1);
  EXPECT_EQ(Owner(kA).pages_outstanding, 0);
  EXPECT_EQ(Owner(kB).pages_outstanding, 0);
  EXPECT_EQ(PagesFreed(Owner(kA)), 1u);
  EXPECT_EQ(PagesFreed(Owner(kB)), 1u);
}

TEST_F(PageStateMachineTest, DoubleFreeCountedNotSubtractedTwice) {
  apq_claim_pages(300, 0, kA);
  apq_release_pages(300, 0);
  apq_release_pages(300, 0);
  EXPECT_EQ(Owner(kA).pages_outstanding, 0);
  EXPECT_EQ(PagesFreed(Owner(kA)), 1u);
  EXPECT_EQ(Counter(APQ_CTR_FREE_UNKNOWN_PAGES), 1u);
}

TEST_F(PageStateMachineTest, UnknownFreeCountedPerPage) {
  apq_release_pages(2048, 4);  // a page allocated before tracing, order 4
  EXPECT_EQ(Counter(APQ_CTR_FREE_UNKNOWN_PAGES), 16u);
  for (const auto& owner : state_.owner_counters) EXPECT_EQ(owner.pages_outstanding, 0);
}

TEST_F(PageStateMachineTest, AllocationOverLivePageMovesIt) {
  apq_claim_pages(700, 1, kA);
  apq_claim_pages(701, 0, kB);  // the free of 701 was missed
  EXPECT_EQ(Counter(APQ_CTR_ALLOC_OVER_LIVE_PAGES), 1u);
  EXPECT_EQ(Owner(kA).pages_outstanding, 1);
  EXPECT_EQ(Owner(kB).pages_outstanding, 1);
  EXPECT_EQ(state_.page_owner[701], kB);
}

TEST_F(PageStateMachineTest, PagesBeyondTableCountedAndNotOwned) {
  apq_claim_pages(4094, 2, kA);  // pfns 4094..4097, table ends at 4096
  EXPECT_EQ(Owner(kA).pages_outstanding, 2);
  EXPECT_EQ(Owner(kA).pages_allocated, 2u);
  EXPECT_EQ(Counter(APQ_CTR_PFN_OUT_OF_RANGE), 2u);
  apq_release_pages(4094, 2);
  EXPECT_EQ(Owner(kA).pages_outstanding, 0);
  EXPECT_EQ(Counter(APQ_CTR_PFN_OUT_OF_RANGE), 4u);
  EXPECT_EQ(Counter(APQ_CTR_FREE_UNKNOWN_PAGES), 0u);
}

TEST_F(PageStateMachineTest, LargestOrderIsTrackedWhole) {
  state_.page_owner.assign(1 << 12, APQ_OWNER_NONE);
  apq_claim_pages(1024, APQ_NUM_ORDERS - 1, kA);
  EXPECT_EQ(Owner(kA).pages_outstanding, static_cast<__s64>(APQ_MAX_PAGES_PER_EVENT));
  apq_release_pages(1024, APQ_NUM_ORDERS - 1);
  EXPECT_EQ(Owner(kA).pages_outstanding, 0);
}

}  // namespace
