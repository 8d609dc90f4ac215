#include "common/prometheus.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace apq {
namespace {

std::string Value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Integral values print whole (byte counts above 2^53 lose nothing to %g).
  if (value == std::floor(value) && std::fabs(value) < 1e18) return absl::StrCat(static_cast<int64_t>(value));
  return absl::StrCat(value);
}

}  // namespace

std::string PrometheusText(const std::vector<MetricFamily>& families) {
  std::string out;
  for (const MetricFamily& family : families) {
    if (family.samples.empty()) continue;
    absl::StrAppend(&out, "# HELP ", family.name, " ",
                    absl::StrReplaceAll(family.help, {{"\\", "\\\\"}, {"\n", "\\n"}}), "\n# TYPE ", family.name, " ",
                    family.type, "\n");
    for (const MetricSample& sample : family.samples) {
      absl::StrAppend(&out, family.name);
      if (!sample.labels.empty()) {
        out += '{';
        for (size_t i = 0; i < sample.labels.size(); ++i) {
          absl::StrAppend(&out, i ? "," : "", sample.labels[i].first, "=\"",
                          absl::StrReplaceAll(sample.labels[i].second, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}}),
                          "\"");
        }
        out += '}';
      }
      absl::StrAppend(&out, " ", Value(sample.value), "\n");
    }
  }
  return out;
}

}  // namespace apq
