// libFuzzer target: what an operator types and what the web view's query
// string carries: apq diff's selectors, page class names, every request
// parameter.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "common/requests.h"
#include "common/page_classes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<apq::v1::DiffSelector> selector = apq::ParseDiffSelector(text, absl::FromUnixSeconds(1796000000));
  if (selector.ok() && selector->from_unix_millis() > selector->to_unix_millis() && selector->to_unix_millis() != 0) {
    __builtin_trap();  // a range must run forwards
  }
  (void)apq::ParseClassFilter(text);
  // Every parameter of the shared request builders (apq's flags, the web API's query string).
  const absl::Time now = absl::FromUnixSeconds(1796000000);
  for (const char* name : {"by", "class", "top", "build", "pid", "at", "since", "before", "after"}) {
    const apq::RequestParams params = {{name, text}, {"before", "1h"}};
    (void)apq::TopRequestOf(params, now);
    (void)apq::ExplainRequestOf(params);
    (void)apq::DiffRequestOf(params, now);
  }
  return 0;
}
