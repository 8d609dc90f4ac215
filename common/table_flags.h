// --bytes and --wide, the table flags of apq and apq-agent, defined once.
#ifndef APQ_COMMON_TABLE_FLAGS_H_
#define APQ_COMMON_TABLE_FLAGS_H_

#include "common/display.h"

namespace apq {

// The style of tables printed to standard output, as the flags ask.
TableStyle TableStyleFromFlags();

}  // namespace apq

#endif  // APQ_COMMON_TABLE_FLAGS_H_
