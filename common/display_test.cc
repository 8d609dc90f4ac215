#include "common/display.h"

#include <cstdlib>

#include "gtest/gtest.h"

namespace apq {
namespace {

TEST(DisplayTest, SizesInIecUnitsOrExactBytes) {
  const TableStyle iec{false, 0}, exact{true, 0};
  EXPECT_EQ(ShownBytes(0, iec), "0 B");
  EXPECT_EQ(ShownBytes(1023, iec), "1023 B");
  EXPECT_EQ(ShownBytes(12 << 20, iec), "12.0 MiB");
  EXPECT_EQ(ShownBytes(12587008, iec), "12.0 MiB");
  EXPECT_EQ(ShownBytes(1.5 * (uint64_t{1} << 40), iec), "1.5 TiB");
  EXPECT_EQ(ShownBytes(12587008, exact), "12587008");
}

TEST(DisplayTest, CallPathsReadInnermostFirstAndAreCutToTheWidth) {
  const std::vector<std::string> root_first = {"entry_SYSCALL_64", "do_syscall_64", "ksys_write", "vfs_write",
                                               "anon_pipe_write"};
  EXPECT_EQ(CallerChain(root_first, 0),
            "anon_pipe_write <- vfs_write <- ksys_write <- do_syscall_64 <- entry_SYSCALL_64");
  EXPECT_EQ(CallerChain(root_first, 40), "anon_pipe_write <- vfs_write <- ...");
  for (size_t columns = 16; columns < 90; ++columns) {
    EXPECT_LE(CallerChain(root_first, columns).size(), columns) << columns;
  }
  EXPECT_EQ(CallerChain(root_first, 5), "anon_pipe_write") << "the leaf is kept whole";
}

TEST(DisplayTest, LinesFitTheWidthUnlessWide) {
  EXPECT_EQ(FitLine("abcdefghij", {false, 8}), "abcde...");
  EXPECT_EQ(FitLine("abcdefghij", {false, 0}), "abcdefghij");
  setenv("COLUMNS", "123", 1);
  EXPECT_EQ(StdoutTableStyle(false, false).width, 123u);
  EXPECT_EQ(StdoutTableStyle(true, true).width, 0u) << "--wide: whole lines";
  EXPECT_TRUE(StdoutTableStyle(true, true).exact_bytes);
  unsetenv("COLUMNS");
}

}  // namespace
}  // namespace apq
