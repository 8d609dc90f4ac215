#include "common/build_id.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace apq {
namespace {

std::string Note(uint32_t type, absl::string_view name, absl::string_view desc) {
  std::string out;
  auto put = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  put(static_cast<uint32_t>(name.size()));
  put(static_cast<uint32_t>(desc.size()));
  put(type);
  out.append(name.data(), name.size());
  out.append((4 - name.size() % 4) % 4, '\0');
  out.append(desc.data(), desc.size());
  out.append((4 - desc.size() % 4) % 4, '\0');
  return out;
}

TEST(BuildIdTest, FindsTheGnuNoteAmongOthers) {
  std::string id("\x12\x34\xab\xcd\xef\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 20);
  std::string notes = Note(1, std::string("Xen\0", 4), "abc") + Note(3, std::string("GNU\0", 4), id);
  auto found = GnuBuildIdFromNotes(notes);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, id);
  EXPECT_EQ(HexBuildId(*found).substr(0, 8), "1234abcd");
}

TEST(BuildIdTest, MalformedNotesAreRejectedWithoutOverreading) {
  std::string good = Note(3, std::string("GNU\0", 4), "0123456789abcdef0123");
  EXPECT_FALSE(GnuBuildIdFromNotes("").has_value());
  EXPECT_FALSE(GnuBuildIdFromNotes(good.substr(0, good.size() - 8)).has_value());  // truncated
  std::string huge = good;
  huge[4] = '\xff';
  huge[5] = '\xff';
  huge[6] = '\xff';
  huge[7] = '\x7f';  // desc size beyond the buffer
  EXPECT_FALSE(GnuBuildIdFromNotes(huge).has_value());
  EXPECT_FALSE(GnuBuildIdFromNotes(Note(3, std::string("LLVM", 4), "x")).has_value());
}

TEST(BuildIdTest, RunningKernelHasOne) {
  // Every supported kernel carries one; a missing file is this test's error.
  absl::StatusOr<std::string> id = ReadGnuBuildId("/sys/kernel/notes");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_GE(id->size(), 16u);
}

}  // namespace
}  // namespace apq
