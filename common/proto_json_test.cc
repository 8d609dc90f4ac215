#include "common/proto_json.h"

#include "apq/v1/apq.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

apq::v1::HostsResponse OneHostNeverClassified() {
  apq::v1::HostsResponse response;
  apq::v1::HostInfo* host = response.add_hosts();
  host->set_host("web-1");
  host->set_last_report_unix_millis(1'700'000'000'000);
  return response;
}

TEST(ProtoJsonTest, SnakeCaseNamesAndZerosPrinted) {
  absl::StatusOr<std::string> json = ProtoJson(OneHostNeverClassified());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"last_report_unix_millis\":\"1700000000000\""));
  EXPECT_THAT(*json, HasSubstr("\"classified_unix_millis\":\"0\""));
  EXPECT_THAT(*json, Not(HasSubstr("classifiedUnixMillis")));
  EXPECT_THAT(*json, Not(HasSubstr("lastReportUnixMillis")));
}

}  // namespace
}  // namespace apq
