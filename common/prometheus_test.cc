#include "common/prometheus.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

std::vector<MetricFamily> Families() {
  return {
      {"apq_host_outstanding_bytes",
       "Bytes\\held \"now\"\nper host.",
       "gauge",
       {{{{"cluster", "prod"}, {"host", "web-1"}}, 16777216}, {{{"cluster", "prod"}, {"host", "we\"b\\2\n"}}, 0.5}}},
      {"apq_reports_total", "Reports stored.", "counter", {{{}, 12}}},
      {"apq_empty", "Nothing.", "gauge", {}}};
}

TEST(PrometheusTest, TextFormatEscapesAndSkipsEmptyFamilies) {
  EXPECT_EQ(PrometheusText(Families()),
            "# HELP apq_host_outstanding_bytes Bytes\\\\held \"now\"\\nper host.\n"
            "# TYPE apq_host_outstanding_bytes gauge\n"
            "apq_host_outstanding_bytes{cluster=\"prod\",host=\"web-1\"} 16777216\n"
            "apq_host_outstanding_bytes{cluster=\"prod\",host=\"we\\\"b\\\\2\\n\"} 0.5\n"
            "# HELP apq_reports_total Reports stored.\n"
            "# TYPE apq_reports_total counter\n"
            "apq_reports_total 12\n");
}

// The real consumer's linter: Debian's promtool.
TEST(PrometheusTest, PromtoolAcceptsIt) {
  const std::string file = ::testing::TempDir() + "/apq-metrics-" + std::to_string(getpid()) + ".txt";
  std::ofstream(file) << PrometheusText(Families());
  const std::string command = "promtool check metrics < '" + file + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buffer[1024];
  while (fgets(buffer, sizeof buffer, pipe)) out += buffer;
  EXPECT_EQ(pclose(pipe), 0) << out;
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace apq
