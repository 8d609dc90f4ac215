#include "common/page_classes.h"

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
  EXPECT_EQ(FlagClassOf(Bits({kHuge, 15})), apq::v1::PAGE_CLASS_HUGETLB);      // hugetlb head
  EXPECT_EQ(FlagClassOf(Bits({kHuge, kLru, kAnon, 22})), apq::v1::PAGE_CLASS_ANON);  // THP
  EXPECT_EQ(FlagClassOf(Bits({kLru, kUnevictable, kAnon})), apq::v1::PAGE_CLASS_UNEVICTABLE);
  EXPECT_EQ(FlagClassOf(Bits({kLru, kAnon, kSwapBacked})), apq::v1::PAGE_CLASS_ANON);
  EXPECT_EQ(FlagClassOf(Bits({kLru, kSwapBacked})), apq::v1::PAGE_CLASS_ANON);  // shmem
  EXPECT_EQ(FlagClassOf(Bits({kAnon, kSwapBacked})), apq::v1::PAGE_CLASS_ANON);  // not on the LRU yet
  EXPECT_EQ(FlagClassOf(Bits({kSwapBacked, kUptodate})), apq::v1::PAGE_CLASS_ANON);  // shmem, not on the LRU yet
  EXPECT_EQ(FlagClassOf(Bits({kLru})), apq::v1::PAGE_CLASS_FILE);
  EXPECT_EQ(FlagClassOf(Bits({kUptodate, kDirty})), apq::v1::PAGE_CLASS_FILE);  // written page cache, not on the LRU yet
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

TEST(PageClassesTest, OwnedPagesAreCountedByFlagsOrLeftToTheirPath) {
  using namespace kpf;
  const uint32_t owners[] = {0, 2, 2, 2, 3, 3, 2};
  const uint64_t flags[] = {Bits({kSlab}), 0, Bits({kLru, kAnon}), Bits({kBuddy}), Bits({kSlab}), 0, Bits({kNoPage})};
  absl::flat_hash_map<uint32_t, OwnerPageClasses> classes;
  uint64_t free_pages = 0;
  ClassifyOwnedPages(owners, flags, std::size(owners), &classes, &free_pages);
  EXPECT_EQ(free_pages, 2u);
  ASSERT_EQ(classes.size(), 2u);
  EXPECT_EQ(classes[2].unflagged, 1u);
  EXPECT_EQ(classes[2].flagged[apq::v1::PAGE_CLASS_ANON], 1u);
  EXPECT_EQ(classes[3].unflagged, 1u);
  EXPECT_EQ(classes[3].flagged[apq::v1::PAGE_CLASS_SLAB], 1u);
}

}  // namespace
}  // namespace apq
