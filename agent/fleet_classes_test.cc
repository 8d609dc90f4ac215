#include "agent/fleet_classes.h"

#include "gtest/gtest.h"

namespace apq {
namespace {

constexpr char kKallsyms[] =
    "ffffffff81000000 T entry_SYSCALL_64\n"
    "ffffffff81001000 T anon_pipe_write\n"
    "ffffffff81002000 T __vmalloc_node_range\n"
    "ffffffff81003000 T alloc_pages_noprof\n";

TrackerSnapshot::Owner Owner(uint64_t id, uint32_t stack, int64_t outstanding) {
  TrackerSnapshot::Owner owner;
  owner.id = id;
  owner.key.stack_id = stack;
  owner.counters.pages_outstanding = outstanding;
  return owner;
}

// Unflagged pages take the class of their owner's path (a pipe's are
// hidden, vmalloc's are counted in VmallocUsed); pages with a flag keep it;
// where the path is not known (a lost stack, the overflow owner) the class
// is unknown. The host's memory is the meminfo read with it.
TEST(FleetClassifierTest, OwnersTakeTheClassOfTheirPathForUnflaggedPages) {
  absl::StatusOr<KernelSymbols> symbols = KernelSymbols::Parse(kKallsyms);
  ASSERT_TRUE(symbols.ok());
  apq::v1::StartHolder pipes;
  pipes.set_kind("pipe buffers");
  pipes.set_tgid(42);
  pipes.set_bytes(8192);
  FleetClassifier classifier(&*symbols, uint64_t{1} << 20, std::vector<apq::v1::StartHolder>{pipes});
  TrackerSnapshot first;
  first.new_stacks[1] = {0xffffffff81003010, 0xffffffff81001010, 0xffffffff81000010};  // pipe
  classifier.Learn(first);
  TrackerSnapshot snapshot;
  snapshot.new_stacks[2] = {0xffffffff81003010, 0xffffffff81002010, 0xffffffff81000010};  // vmalloc
  classifier.Learn(snapshot);
  const uint64_t reused = OwnerSerial(3, 1);  // a reused BPF owner id: classes are found by its low half
  snapshot.owners = {Owner(reused, 1, 6), Owner(4, 2, 4), Owner(5, APQ_STACK_LOST, 2), Owner(APQ_OWNER_OVERFLOW, 1, 3),
                     Owner(6, 1, 1)};
  TrackerSnapshot::PageClassification& pages = snapshot.page_classes.emplace();
  pages.owners[3].unflagged = 5;
  pages.owners[3].flagged[apq::v1::PAGE_CLASS_ANON] = 1;
  pages.owners[4].unflagged = 4;
  pages.owners[5].unflagged = 2;
  pages.owners[APQ_OWNER_OVERFLOW].unflagged = 3;
  pages.free_pages_still_owned = 7;

  absl::StatusOr<ClassifiedPages> classified =
      classifier.Classify(snapshot, "MemTotal: 1000 kB\nMemFree: 10 kB\nHugePages_Total: 0\n", 1234);
  ASSERT_TRUE(classified.ok()) << classified.status();
  ClassPageCounts pipe{}, vmalloc{}, lost{}, overflow{};
  pipe[apq::v1::PAGE_CLASS_HIDDEN] = 5;
  pipe[apq::v1::PAGE_CLASS_ANON] = 1;
  vmalloc[apq::v1::PAGE_CLASS_VMALLOC] = 4;
  lost[apq::v1::PAGE_CLASS_UNKNOWN] = 2;
  overflow[apq::v1::PAGE_CLASS_UNKNOWN] = 3;
  EXPECT_EQ(classified->owners.at(reused), pipe);
  EXPECT_EQ(classified->owners.at(4), vmalloc);
  EXPECT_EQ(classified->owners.at(5), lost);
  EXPECT_EQ(classified->owners.at(APQ_OWNER_OVERFLOW), overflow);
  EXPECT_FALSE(classified->owners.contains(6)) << "an owner with no pages found holds none";

  const apq::v1::HostMemory& memory = classified->memory;
  EXPECT_EQ(memory.classified_unix_millis(), 1234);
  EXPECT_EQ(memory.meminfo_size(), 3);
  for (const apq::v1::MeminfoField& field : memory.meminfo()) {
    if (field.name() == "MemTotal") {
      EXPECT_EQ(field.bytes(), 1000u * 1024);
    }
  }
  EXPECT_TRUE(memory.held_at_start_known());
  EXPECT_EQ(memory.held_at_start_bytes(), 1u << 20);
  EXPECT_EQ(memory.free_pages_still_owned(), 7u);
  ASSERT_EQ(memory.held_at_start_holders_size(), 1);
  EXPECT_EQ(memory.held_at_start_holders(0).tgid(), 42u);
  EXPECT_TRUE(memory.held_at_start_holders_unavailable().empty());
  FleetClassifier without(&*symbols, std::nullopt, absl::UnavailableError("no iterators here"));
  absl::StatusOr<ClassifiedPages> unavailable = without.Classify(snapshot, "MemTotal: 1 kB\nMemFree: 1 kB\n", 1);
  ASSERT_TRUE(unavailable.ok());
  EXPECT_EQ(unavailable->memory.held_at_start_holders_unavailable(), "no iterators here");
  EXPECT_FALSE(unavailable->memory.held_at_start_known());

  EXPECT_FALSE(classifier.Classify(snapshot, "MemTotal: lots\n", 0).ok());
  snapshot.page_classes.reset();
  EXPECT_FALSE(classifier.Classify(snapshot, "MemTotal: 1 kB\n", 0).ok());
}

}  // namespace
}  // namespace apq
