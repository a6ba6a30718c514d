// Early-return helpers for absl::Status / absl::StatusOr (Abseil 20220623 ships none).
//
//   absl::Status Load() {
//     LEFTFOLD_RETURN_IF_ERROR(Open());
//     LEFTFOLD_ASSIGN_OR_RETURN(std::string bytes, Read());
//     LEFTFOLD_ASSIGN_OR_RETURN(auto parsed, Parse(bytes));
//     ...
//   }
//
// The status is returned unchanged (no message prefix): add context where it helps the reader.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns from the current function if `expr` (an absl::Status) is not OK.
#define LEFTFOLD_RETURN_IF_ERROR(expr)                   \
  do {                                                   \
    ::absl::Status leftfold_status_ = (expr);            \
    if (!leftfold_status_.ok()) return leftfold_status_; \
  } while (false)

// Evaluates `expr` (an absl::StatusOr<T>); returns its status if not OK, else moves the value into
// `lhs` (a declaration such as `auto x` or an existing variable).
#define LEFTFOLD_ASSIGN_OR_RETURN(lhs, expr) \
  LEFTFOLD_ASSIGN_OR_RETURN_IMPL_(LEFTFOLD_STATUS_CONCAT_(leftfold_statusor_, __LINE__), lhs, expr)

#define LEFTFOLD_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                    \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = *std::move(statusor)

#define LEFTFOLD_STATUS_CONCAT_INNER_(a, b) a##b
#define LEFTFOLD_STATUS_CONCAT_(a, b) LEFTFOLD_STATUS_CONCAT_INNER_(a, b)
