// How a ScanRange maps onto an ordered key space, shared by every View backend (RocksDB, the
// in-memory fixture view): where to seek, when to stop, and the page token.
//
//   ScanPlan plan(range);
//   for (it.Seek(plan.lower()); it.Valid() && plan.InRange(it.key()); it.Next()) {
//     if (plan.Full()) { page.next_page_token = it.key(); break; }
//     plan.Take(); ...
//   }
//
// The page token is the next key to read, so pages stay correct while the view changes.
#pragma once

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "leftfold/view.h"

namespace leftfold::internal::store {

class ScanPlan {
 public:
  explicit ScanPlan(const ScanRange& range)
      : prefix_(range.prefix),
        end_(range.prefix.empty() ? range.end : std::string()),
        limit_(range.limit == 0 ? 100 : range.limit) {
    lower_ = range.prefix.empty() ? range.start : range.prefix;
    if (range.page_token > lower_) lower_ = range.page_token;
  }
  const std::string& lower() const { return lower_; }
  bool InRange(absl::string_view key) const {
    if (!prefix_.empty()) return absl::StartsWith(key, prefix_);
    return end_.empty() || key < absl::string_view(end_);
  }
  bool Full() const { return taken_ >= limit_; }
  void Take() { ++taken_; }

 private:
  std::string prefix_;
  std::string end_;
  std::string lower_;
  size_t limit_;
  size_t taken_ = 0;
};

}  // namespace leftfold::internal::store
