#include "agent/bpf_page_tracker.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

TEST(ZoneinfoTest, HighestZoneEndWins) {
  constexpr char kZoneinfo[] = R"(Node 0, zone      DMA
  pages free     3840
        spanned  4095
        present  3998
  start_pfn:           1
Node 0, zone   Normal
        spanned  5505024
  start_pfn:           1048576
Node 0, zone    DMA32
        spanned  1044480
  start_pfn:           4096
Node 0, zone  Movable
        spanned  0
)";
  absl::StatusOr<uint64_t> size = PageTableSizeFromZoneinfo(kZoneinfo);
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, 1048576u + 5505024u);
}

TEST(ZoneinfoTest, GarbageIsAnError) {
  EXPECT_FALSE(PageTableSizeFromZoneinfo("").ok());
  EXPECT_FALSE(PageTableSizeFromZoneinfo("Node 0, zone DMA\n spanned  x\n start_pfn: 1\n").ok());
  EXPECT_FALSE(PageTableSizeFromZoneinfo("Node 0, zone DMA\n start_pfn: 1\n").ok());
}

TEST(PrerequisitesTest, MissingBtfIsNamed) {
  absl::Status status = CheckKernelPrerequisites("/nonexistent/btf/vmlinux");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("no BTF"), std::string::npos) << status;
  EXPECT_NE(status.message().find("CONFIG_DEBUG_INFO_BTF"), std::string::npos) << status;
  EXPECT_EQ(std::string(status.message()).find('\n'), std::string::npos);
}

TEST(TracefsTest, MissingMountPointIsNamed) {
  absl::StatusOr<bool> mounted = EnsureTracefs("/nonexistent/debug/tracing", "/nonexistent/tracing");
  ASSERT_FALSE(mounted.ok());
  EXPECT_NE(mounted.status().message().find("/nonexistent/tracing"), std::string::npos) << mounted.status();
  EXPECT_EQ(std::string(mounted.status().message()).find('\n'), std::string::npos);
}

TEST(KernelReleaseTest, TracepointMissesCountedFrom67) {
  EXPECT_FALSE(CountsTracepointRecursionMisses("5.10.0-136.12.0.86.oe2203sp1.x86_64"));
  EXPECT_FALSE(CountsTracepointRecursionMisses("6.1.0-56-amd64"));
  EXPECT_FALSE(CountsTracepointRecursionMisses("6.6.30"));
  EXPECT_TRUE(CountsTracepointRecursionMisses("6.7.0"));
  EXPECT_TRUE(CountsTracepointRecursionMisses("6.18.44-fc-v782"));
  EXPECT_TRUE(CountsTracepointRecursionMisses("7.0"));
  EXPECT_FALSE(CountsTracepointRecursionMisses("garbage"));
}

}  // namespace
}  // namespace apq
