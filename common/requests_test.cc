#include "common/requests.h"

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

TEST(RequestsTest, TopDefaultsToTheHiddenViewNowAndToAllClassesInHistory) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  absl::StatusOr<apq::v1::TopRequest> top = TopRequestOf({{"cluster", "prod"}}, now);
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(top->cluster(), "prod");
  EXPECT_EQ(top->group_by(), apq::v1::GROUP_BY_STACK);
  EXPECT_EQ(top->class_filter(), apq::v1::CLASS_FILTER_HIDDEN);
  EXPECT_EQ(top->top(), 20u);
  EXPECT_EQ(top->at_unix_millis(), 0);
  top = TopRequestOf({{"since", "2h"},
                      {"by", "function"},
                      {"top", "0"},
                      {"build", "ABcd"},
                      {"pid", "77"},
                      {"processes", "true"},
                      {"frame", "pipe"},
                      {"host", "web-1"}},
                     now);
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(top->class_filter(), apq::v1::CLASS_FILTER_ALL) << "history keeps every class together";
  EXPECT_EQ(top->since_unix_millis(), (1'800'000'000 - 7200) * 1000LL);
  EXPECT_EQ(top->group_by(), apq::v1::GROUP_BY_FUNCTION);
  EXPECT_EQ(top->top(), 0u);
  EXPECT_EQ(top->build_id(), std::string("\xab\xcd"));
  EXPECT_EQ(top->pid(), 77u);
  EXPECT_TRUE(top->with_processes());
  EXPECT_EQ(top->frame_substring(), "pipe");
  EXPECT_EQ(top->host(), "web-1");
  top = TopRequestOf({{"at", "2026-11-01T00:00Z"}, {"class", "visible"}}, now);
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(top->at_unix_millis(), 1'793'491'200'000LL) << "the same time forms as diff's selectors";
  EXPECT_EQ(top->class_filter(), apq::v1::CLASS_FILTER_VISIBLE);
}

TEST(RequestsTest, BadParametersSayWhichAndWhy) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  for (const RequestParams& bad : std::vector<RequestParams>{{{"by", "stacks"}},
                                                             {{"by", "STACK"}},
                                                             {{"top", "-1"}},
                                                             {{"top", "1000001"}},
                                                             {{"top", "ten"}},
                                                             {{"build", "abc"}},
                                                             {{"build", "zz"}},
                                                             {{"pid", "-3"}},
                                                             {{"pid", "4294967296"}},
                                                             {{"processes", "yes"}},
                                                             {{"class", "hiden"}},
                                                             {{"at", "yesterday"}},
                                                             {{"since", "-5m"}}}) {
    absl::StatusOr<apq::v1::TopRequest> top = TopRequestOf(bad, now);
    ASSERT_FALSE(top.ok()) << bad.begin()->first << "=" << bad.begin()->second;
    EXPECT_EQ(top.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(top.status().message().find(bad.begin()->first), std::string::npos) << top.status();
  }
}

TEST(RequestsTest, ExplainAndDiff) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  absl::StatusOr<apq::v1::ExplainRequest> explain = ExplainRequestOf({{"by", "host"}, {"top", "0"}, {"host", "h"}});
  ASSERT_TRUE(explain.ok()) << explain.status();
  EXPECT_TRUE(explain->by_host());
  EXPECT_EQ(explain->top(), 0u);
  EXPECT_EQ(explain->host(), "h");
  EXPECT_FALSE(ExplainRequestOf({{"by", "function"}}).ok());

  EXPECT_FALSE(DiffRequestOf({{"after", "1h"}}, now).ok()) << "before is needed";
  absl::StatusOr<apq::v1::DiffRequest> diff = DiffRequestOf({{"before", "build=ab"}, {"by", "function"}}, now);
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_EQ(diff->before().build_hex_prefix(), "ab");
  EXPECT_EQ(diff->after().to_unix_millis(), 0) << "no after: the newest sample";
  EXPECT_EQ(diff->group_by(), apq::v1::GROUP_BY_FUNCTION);
  diff = DiffRequestOf({{"before", "2h"}, {"after", "nonsense=1"}}, now);
  ASSERT_FALSE(diff.ok());
  EXPECT_NE(diff.status().message().find("after"), std::string::npos) << diff.status();
}

}  // namespace
}  // namespace apq
