// libFuzzer target: what an operator types and what the web view's query
// string carries: apq diff's selectors, page class names, flag names.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "cli/diff_selector.h"
#include "common/page_classes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<apq::v1::DiffSelector> selector = apq::ParseDiffSelector(text, absl::FromUnixSeconds(1796000000));
  if (selector.ok() && selector->from_unix_millis() > selector->to_unix_millis() && selector->to_unix_millis() != 0) {
    __builtin_trap();  // a range must run forwards
  }
  (void)apq::ParseClassFilter(text);
  return 0;
}
