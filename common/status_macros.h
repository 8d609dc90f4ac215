#ifndef APQ_COMMON_STATUS_MACROS_H_
#define APQ_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Status plumbing in one line, for functions returning absl::Status or
// absl::StatusOr<T>:
//   APQ_RETURN_IF_ERROR(store.Commit());
//   APQ_ASSIGN_OR_RETURN(Statement query, db.Prepare("SELECT ..."));

#define APQ_RETURN_IF_ERROR(expr)                                 \
  do {                                                            \
    if (::absl::Status apq_status_ = (expr); !apq_status_.ok()) { \
      return apq_status_;                                         \
    }                                                             \
  } while (0)

#define APQ_STATUS_CONCAT_INNER(a, b) a##b
#define APQ_STATUS_CONCAT(a, b) APQ_STATUS_CONCAT_INNER(a, b)

// lhs may declare a variable ("Statement query") or name an existing one.
#define APQ_ASSIGN_OR_RETURN(lhs, expr) APQ_ASSIGN_OR_RETURN_IMPL(APQ_STATUS_CONCAT(apq_statusor_, __LINE__), lhs, expr)
#define APQ_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr)     \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // APQ_COMMON_STATUS_MACROS_H_
