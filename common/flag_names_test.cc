#include "common/flag_names.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

TEST(FlagNamesTest, DashesInNamesOnly) {
  std::vector<std::string> in = {"apq-agent", "--sample-bytes=524288", "--max-owners", "12", "-log-dir=/a-b",
                                 "--", "--not-a-flag"};
  std::vector<char*> argv;
  for (std::string& s : in) argv.push_back(s.data());
  EXPECT_THAT(NormalizeFlagNames(static_cast<int>(argv.size()), argv.data()),
              ::testing::ElementsAre("apq-agent", "--sample_bytes=524288", "--max_owners", "12", "-log_dir=/a-b", "--",
                                     "--not-a-flag"));
}

}  // namespace
}  // namespace apq
