#include "agent/start_holders.h"

#include <cstring>

#include "gtest/gtest.h"

namespace apq {
namespace {

apq_held_record Record(uint32_t kind, uint64_t object, uint32_t tgid, bool writer, uint64_t pages, uint64_t bytes,
                       const char* comm) {
  apq_held_record record{};
  record.kind = kind;
  record.object = object;
  record.tgid = tgid;
  record.writer = writer;
  record.pages = pages;
  record.bytes = bytes;
  std::strncpy(record.comm, comm, sizeof(record.comm));
  return record;
}

// A pipe open in a reader and a writer goes to the writer; one open in two
// readers to the lower tgid; a socket open twice in one process counts once.
TEST(StartHoldersTest, EachPipeAndSocketCountsOnceForOneProcess) {
  std::vector<apq_held_record> records = {
      Record(APQ_HELD_PIPE, 0xa, 10, false, 4, 0, "reader"),     Record(APQ_HELD_PIPE, 0xa, 20, true, 4, 0, "writer"),
      Record(APQ_HELD_PIPE, 0xb, 30, false, 2, 0, "late"),       Record(APQ_HELD_PIPE, 0xb, 5, false, 2, 0, "early"),
      Record(APQ_HELD_SOCKET, 0xa, 7, false, 0, 9000, "server"),  // same address, other kind: another object
      Record(APQ_HELD_SOCKET, 0xa, 7, false, 0, 9000, "server"), Record(APQ_HELD_PIPE, 0xc, 20, true, 1, 0, "writer"),
  };
  std::vector<apq::v1::StartHolder> holders = HoldersOf(records);
  ASSERT_EQ(holders.size(), 3u);
  EXPECT_EQ(holders[0].kind(), "pipe buffers");
  EXPECT_EQ(holders[0].tgid(), 20u);
  EXPECT_EQ(holders[0].comm(), "writer");
  EXPECT_EQ(holders[0].bytes(), 5u * 4096);
  EXPECT_EQ(holders[0].objects(), 2u);
  EXPECT_EQ(holders[1].kind(), "socket queues");
  EXPECT_EQ(holders[1].tgid(), 7u);
  EXPECT_EQ(holders[1].bytes(), 9000u);
  EXPECT_EQ(holders[1].objects(), 1u);
  EXPECT_EQ(holders[2].tgid(), 5u);
  EXPECT_EQ(holders[2].comm(), "early");
  EXPECT_EQ(holders[2].bytes(), 2u * 4096);
}

}  // namespace
}  // namespace apq
