#include "common/top_profile.h"

#include "gtest/gtest.h"

namespace apq {
namespace {

apq::v1::ClassAmount Amount(PageClass page_class, double bytes) {
  apq::v1::ClassAmount amount;
  amount.set_page_class(page_class);
  amount.set_bytes(bytes);
  return amount;
}

// Per holder, only the selected classes; the entry's allocations once.
TEST(TopProfileTest, HoldersAndSelectedClassesOnly) {
  apq::v1::TopResponse response;
  apq::v1::TopEntry* entry = response.add_entries();
  entry->set_key("do_syscall_64;anon_pipe_write");
  entry->add_frame_objects("vmlinux");
  entry->add_frame_objects("vmlinux");
  entry->set_bytes_outstanding(8192);
  entry->set_bytes_allocated(65536);
  *entry->add_classes() = Amount(apq::v1::PAGE_CLASS_HIDDEN, 8192);
  *entry->add_classes() = Amount(apq::v1::PAGE_CLASS_FILE, 4096);
  apq::v1::PathHolder* holder = entry->add_processes();
  holder->set_tgid(42);
  holder->set_comm("writer");
  holder->set_cgroup("/a");
  holder->set_bytes(8192);
  *holder->add_classes() = Amount(apq::v1::PAGE_CLASS_HIDDEN, 8192);
  *holder->add_classes() = Amount(apq::v1::PAGE_CLASS_FILE, 4096);
  const MemoryProfile profile = ProfileOfTop(response, apq::v1::CLASS_FILTER_HIDDEN, {{"host", "h1"}}, {"c"});
  ASSERT_EQ(profile.samples.size(), 2u);
  const ProfileSample& held = profile.samples[0];
  EXPECT_EQ(held.inuse_bytes, 8192);
  ASSERT_EQ(held.frames.size(), 2u);
  EXPECT_EQ(held.frames[1].function, "anon_pipe_write");
  EXPECT_EQ(held.frames[1].object, "vmlinux");
  const std::vector<std::pair<std::string, std::string>> labels = {
      {"host", "h1"}, {"process", "writer"}, {"cgroup", "/a"}, {"class", "hidden"}};
  EXPECT_EQ(held.labels, labels);
  EXPECT_EQ(held.numeric_labels, (std::vector<std::pair<std::string, int64_t>>{{"pid", 42}}));
  EXPECT_EQ(profile.samples[1].alloc_bytes, 65536);
  EXPECT_EQ(profile.samples[1].inuse_bytes, 0);
  // Without processes: the entry's selected classes.
  entry->clear_processes();
  const MemoryProfile by_path = ProfileOfTop(response, apq::v1::CLASS_FILTER_ALL, {}, {});
  ASSERT_EQ(by_path.samples.size(), 3u);
  EXPECT_EQ(by_path.samples[0].inuse_bytes, 8192);
  EXPECT_EQ(by_path.samples[1].inuse_bytes, 4096);
  EXPECT_EQ(by_path.samples[1].labels.back().second, "file");
}

TEST(TopProfileTest, FoldedLeavesOutEmptyStacks) {
  apq::v1::TopResponse response;
  apq::v1::TopEntry* held = response.add_entries();
  held->set_key("a;b");
  held->set_bytes_outstanding(4095.6);
  response.add_entries()->set_key("a;c");
  EXPECT_EQ(FoldedOfTop(response), "a;b 4096\n");
}

}  // namespace
}  // namespace apq
