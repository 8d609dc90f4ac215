#include "common/stack_paths.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

using ::testing::ElementsAre;

TEST(StackPathsTest, DropsInnermostTracingAndAllocatorFrames) {
  std::vector<std::string> innermost_first = {"bpf_prog_abc_apq_page_alloc",
                                              "trace_call_bpf",
                                              "perf_trace_mm_page_alloc",
                                              "__alloc_frozen_pages_noprof",
                                              "alloc_pages_mpol",
                                              "alloc_pages_noprof",
                                              "anon_pipe_write",
                                              "vfs_write",
                                              "ksys_write",
                                              "do_syscall_64",
                                              "entry_SYSCALL_64_after_hwframe"};
  EXPECT_THAT(CallPathRootFirst(innermost_first), ElementsAre("entry_SYSCALL_64_after_hwframe", "do_syscall_64",
                                                              "ksys_write", "vfs_write", "anon_pipe_write"));
}

TEST(StackPathsTest, KeepsAllocatorNamesAboveTheCaller) {
  // Only the innermost run is the allocator: a frame named like it further
  // up is part of the caller's path.
  EXPECT_THAT(CallPathRootFirst({"get_page_from_freelist", "my_driver_fill", "alloc_pages", "probe"}),
              ElementsAre("probe", "alloc_pages", "my_driver_fill"));
}

TEST(StackPathsTest, RecognisesClonesAndOlderNames) {
  EXPECT_TRUE(IsAllocatorOrTracingFrame("__alloc_pages_nodemask"));
  EXPECT_TRUE(IsAllocatorOrTracingFrame("rmqueue.isra.0"));
  EXPECT_TRUE(IsAllocatorOrTracingFrame("__folio_alloc_noprof"));
  EXPECT_FALSE(IsAllocatorOrTracingFrame("alloc_pages_exact"));
  EXPECT_FALSE(IsAllocatorOrTracingFrame("pipe_write"));
}

// A THP fault and a khugepaged collapse end at the same callers on 5.10
// (alloc_pages_vma, khugepaged_alloc_page), 6.6 (vma_alloc_folio,
// alloc_charge_hpage) and 6.18 (vma_alloc_anon_folio_pmd, alloc_charge_folio).
TEST(StackPathsTest, HugePageWrappersOfEveryKernelEndAtTheirCaller) {
  const std::vector<std::vector<std::string>> faults = {
      {"__alloc_pages_nodemask", "alloc_pages_vma", "do_huge_pmd_anonymous_page", "__handle_mm_fault"},
      {"__alloc_pages", "__folio_alloc", "vma_alloc_folio", "do_huge_pmd_anonymous_page", "__handle_mm_fault"},
      {"__alloc_frozen_pages_noprof", "alloc_pages_mpol", "folio_alloc_mpol_noprof", "vma_alloc_folio_noprof",
       "vma_alloc_anon_folio_pmd", "do_huge_pmd_anonymous_page", "__handle_mm_fault"}};
  for (const auto& stack : faults) {
    EXPECT_THAT(CallPathRootFirst(stack), ElementsAre("__handle_mm_fault", "do_huge_pmd_anonymous_page"));
  }
  const std::vector<std::vector<std::string>> collapses = {
      {"__alloc_pages_nodemask", "khugepaged_alloc_page", "collapse_huge_page"},
      {"__alloc_pages", "hpage_collapse_alloc_page", "alloc_charge_hpage", "collapse_huge_page"},
      {"__folio_alloc_noprof", "hpage_collapse_alloc_folio", "alloc_charge_folio", "collapse_huge_page"}};
  for (const auto& stack : collapses) EXPECT_THAT(CallPathRootFirst(stack), ElementsAre("collapse_huge_page"));
  // A path stored before the wrapper joined the list gets today's function.
  EXPECT_EQ(FunctionOf({"__handle_mm_fault", "do_huge_pmd_anonymous_page", "vma_alloc_anon_folio_pmd"}),
            "do_huge_pmd_anonymous_page");
}

TEST(StackPathsTest, FallbackInsideHookedBulkAllocatorMergesWithIt) {
  // The bulk allocator's fallback to the traced allocator runs inside the
  // fexit trampoline: both stacks must end at the bulk allocator's caller.
  EXPECT_THAT(CallPathRootFirst({"trace_call_bpf", "__alloc_pages", "__alloc_pages_bulk", "bpf_trampoline_6442509373",
                                 "__alloc_pages_bulk", "__vmalloc_node_range", "map_create"}),
              ElementsAre("map_create", "__vmalloc_node_range"));
  EXPECT_THAT(CallPathRootFirst({"bpf_prog_1_apq_bulk_exit", "bpf_trampoline_6442509373", "alloc_pages_bulk_noprof",
                                 "vm_area_alloc_pages"}),
              ElementsAre("vm_area_alloc_pages"));
}

TEST(StackPathsTest, AllAllocatorFramesLeaveNothing) {
  EXPECT_TRUE(CallPathRootFirst({"trace_call_bpf", "__alloc_pages"}).empty());
}

// A path's function is its first caller outside the memory APIs, on the
// names of 5.10 (kmalloc_order_trace), 6.6 (__kmalloc_large_node) and 6.18
// (___kmalloc_large_node_noprof, clones).
TEST(StackPathsTest, FunctionIsTheFirstCallerOutsideTheMemoryApis) {
  EXPECT_EQ(FunctionOf({"do_syscall_64", "pipe_fcntl", "pipe_resize_ring", "kmalloc_order_trace", "kmalloc_order"}),
            "pipe_resize_ring");
  EXPECT_EQ(FunctionOf({"pipe_resize_ring", "__kmalloc_noprof", "__kmalloc_large_node"}), "pipe_resize_ring");
  EXPECT_EQ(FunctionOf({"pipe_resize_ring", "___kmalloc_large_node_noprof.constprop.0"}), "pipe_resize_ring");
  EXPECT_EQ(FunctionOf({"map_create", "bpf_map_area_alloc", "__vmalloc_node_range_noprof", "__vmalloc_area_node"}),
            "bpf_map_area_alloc");
  EXPECT_EQ(FunctionOf({"vfs_write", "anon_pipe_write"}), "anon_pipe_write");
  EXPECT_EQ(FunctionOf({"__vmalloc_node_range"}), "__vmalloc_node_range");  // nothing else to name
  EXPECT_EQ(FunctionOf({}), "");
  // The fault path's allocator frame of 6.x is stripped as 5.10's is.
  EXPECT_EQ(CallPathRootFirst({"vma_alloc_folio_noprof", "do_anonymous_page", "__handle_mm_fault"}),
            (std::vector<std::string>{"__handle_mm_fault", "do_anonymous_page"}));
}

TEST(StackPathsTest, FoldEscapesSeparators) {
  EXPECT_EQ(FoldPath({"a", "b c", "d;e"}), "a;b_c;d_e");
  EXPECT_EQ(FoldPath({}), "");
}

}  // namespace
}  // namespace apq
