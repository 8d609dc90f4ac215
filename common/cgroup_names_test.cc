#include "common/cgroup_names.h"

#include <sys/stat.h>

#include <filesystem>

#include "gtest/gtest.h"

namespace apq {
namespace {

uint64_t InodeOf(const std::filesystem::path& path) {
  struct stat st{};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_ino;
}

TEST(CgroupNamesTest, NamesDirectoriesByInode) {
  std::filesystem::path root = std::filesystem::path(::testing::TempDir()) / "apq-cgroup-test";
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root / "system.slice" / "apq.service");
  CgroupNames names(root.string());
  EXPECT_EQ(names.NameOf(InodeOf(root)), "/");
  EXPECT_EQ(names.NameOf(InodeOf(root / "system.slice" / "apq.service")), "/system.slice/apq.service");
  EXPECT_EQ(names.NameOf(1), "cgroup 1");
  std::filesystem::remove_all(root);
}

TEST(CgroupNamesTest, FindsCgroup2MountInMountinfo) {
  constexpr char kHybrid[] =
      "30 1 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
      "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n"
      "41 30 0:38 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n";
  EXPECT_EQ(Cgroup2MountFromMountinfo(kHybrid), "/sys/fs/cgroup/unified");
  EXPECT_EQ(Cgroup2MountFromMountinfo("30 1 0:26 / /sys/fs/cgroup rw - cgroup cgroup rw\n"), "");
  EXPECT_EQ(Cgroup2MountFromMountinfo(""), "");
  // Memory cgroups: the v1 memory hierarchy where there is one.
  EXPECT_EQ(MemoryCgroupMountFromMountinfo(kHybrid), "/sys/fs/cgroup/unified");
  EXPECT_EQ(MemoryCgroupMountFromMountinfo(
                std::string(kHybrid) + "42 30 0:39 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"),
            "/sys/fs/cgroup/memory");
}

TEST(CgroupNamesTest, MissingMountNamesById) {
  CgroupNames names("/nonexistent/apq");
  EXPECT_EQ(names.NameOf(42), "cgroup 42");
  CgroupNames no_mount("");
  EXPECT_EQ(no_mount.NameOf(42), "cgroup 42");
}

}  // namespace
}  // namespace apq
