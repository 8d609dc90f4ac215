#include "common/flag_names.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

TEST(FlagNamesTest, DashesInNamesOnly) {
  std::vector<std::string> in = {"apq-agent", "--sample-bytes=524288", "--max-owners", "12", "-log-dir=/a-b",
                                 "--",        "--not-a-flag"};
  std::vector<char*> argv;
  for (std::string& s : in) argv.push_back(s.data());
  EXPECT_THAT(NormalizeFlagNames(static_cast<int>(argv.size()), argv.data()),
              ::testing::ElementsAre("apq-agent", "--sample_bytes=524288", "--max_owners", "12", "-log_dir=/a-b", "--",
                                     "--not-a-flag"));
}

// A reader over files held in memory.
ReadFlagFile Files(std::map<std::string, std::string> files) {
  return [files = std::move(files)](const std::string& path) -> absl::StatusOr<std::string> {
    auto found = files.find(path);
    if (found == files.end()) return absl::NotFoundError(path);
    return found->second;
  };
}

TEST(FlagFilesTest, CyclesAreRefusedBeforeAbseilFollowsThem) {
  const ReadFlagFile files = Files({{"self", "--top=3\n--flagfile=self\n"},
                                    {"ping", "--flagfile=pong"},
                                    {"pong", "  --flagfile=ping\n"},
                                    {"list", "--flagfile=fine,ping"},
                                    {"fine", "--interval=2\n"}});
  const absl::Status self = CheckFlagFiles({"apq", "--flagfile=self"}, files);
  EXPECT_EQ(self.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(self.message(), "flag file self includes itself (self -> self)");
  EXPECT_EQ(CheckFlagFiles({"apq", "--flagfile", "ping"}, files).message(),
            "flag file ping includes itself (ping -> pong -> ping)");
  EXPECT_FALSE(CheckFlagFiles({"apq", "-flagfile=list"}, files).ok()) << "through a comma list";
  EXPECT_TRUE(CheckFlagFiles({"apq", "--flagfile=fine", "--flagfile=fine"}, files).ok()) << "read twice, no cycle";
  EXPECT_TRUE(CheckFlagFiles({"apq", "--flagfile=missing"}, files).ok()) << "abseil says what is wrong with it";
  EXPECT_TRUE(CheckFlagFiles({"apq", "--", "--flagfile=self"}, files).ok()) << "after --: an argument";
}

TEST(FlagFilesTest, LinesThatAreNotFlagsAreOneError) {
  const ReadFlagFile files = Files({{"good", "# comment\n\n  --top=3\n--cluster=prod\n"},
                                    {"prose", "--top=3\ncluster = prod\n"},
                                    {"binary", std::string("--top=3\n--cluster=a\0b\n", 21)}});
  EXPECT_TRUE(CheckFlagFiles({"apq", "--flagfile=good"}, files).ok());
  EXPECT_EQ(CheckFlagFiles({"apq", "--flagfile=prose"}, files).message(),
            "flag file prose line 2 is not a flag (--name=value) or a comment");
  EXPECT_EQ(CheckFlagFiles({"apq", "--flagfile=binary"}, files).message(),
            "flag file binary line 2 is not a flag (--name=value) or a comment");
}

TEST(FlagFilesTest, DepthFanOutAndSizeAreBounded) {
  std::map<std::string, std::string> chain;
  for (int i = 0; i < 20; ++i) chain["f" + std::to_string(i)] = "--flagfile=f" + std::to_string(i + 1);
  EXPECT_NE(CheckFlagFiles({"apq", "--flagfile=f0"}, Files(chain)).message().find("deeper than 16"), std::string::npos);
  // Each file names the next one twice: 2^12 visits without a cycle.
  std::map<std::string, std::string> fan;
  for (int i = 0; i < 12; ++i)
    fan["g" + std::to_string(i)] = "--flagfile=g" + std::to_string(i + 1) + ",g" + std::to_string(i + 1);
  EXPECT_NE(CheckFlagFiles({"apq", "--flagfile=g0"}, Files(fan)).message().find("more than 256 files"),
            std::string::npos);
  EXPECT_NE(CheckFlagFiles({"apq", "--flagfile=big"}, Files({{"big", std::string((1 << 20) + 1, 'a')}}))
                .message()
                .find("over 1 MiB"),
            std::string::npos);
}

}  // namespace
}  // namespace apq
