#include "cli/diff_selector.h"

#include "gtest/gtest.h"

namespace apq {
namespace {

TEST(DiffSelectorTest, PartsCombine) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  absl::StatusOr<apq::v1::DiffSelector> s = ParseDiffSelector("2h..1h,build=ABC1,release=5.10.0-182,host=web-1", now);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->from_unix_millis(), (1'800'000'000 - 7200) * 1000LL);
  EXPECT_EQ(s->to_unix_millis(), (1'800'000'000 - 3600) * 1000LL);
  EXPECT_EQ(s->build_hex_prefix(), "abc1");
  EXPECT_EQ(s->release(), "5.10.0-182");
  EXPECT_EQ(s->host(), "web-1");

  s = ParseDiffSelector("2026-11-01T00:00Z..2026-11-02T00:00:00Z", now);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->from_unix_millis(), 1'793'491'200'000LL);
  EXPECT_EQ(s->to_unix_millis() - s->from_unix_millis(), 86'400'000LL);

  s = ParseDiffSelector("30m", now);  // a bare time: at that time
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->from_unix_millis(), s->to_unix_millis());
  s = ParseDiffSelector("build=ff", now);  // no time: the newest sample
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->to_unix_millis(), 0);

  for (const char* bad : {"build=xyz", "1h..2h", "yesterday", "1h,2h", "1h..2h..3h", "build="}) {
    EXPECT_FALSE(ParseDiffSelector(bad, now).ok()) << bad;
  }
}

}  // namespace
}  // namespace apq
