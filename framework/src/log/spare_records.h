// The records a consumer refills in place (Consumer::Recycle): those its owner gave back, and
// those a smaller poll did not need. A refilled record keeps its strings' capacity, so a warm
// consumer allocates nothing per record. The owner's thread only, like the consumer itself.
//
//   std::vector<Record> records = spare_.Take();
//   size_t filled = 0;
//   while (filled < max && ...) Fill(SpareRecords::At(records, filled++));  // every field
//   spare_.KeepUnused(records, filled);  // now records.size() == filled
//   return records;
#pragma once

#include <iterator>
#include <utility>
#include <vector>

#include "log/log.h"

namespace leftfold::internal::log {

class SpareRecords {
 public:
  // The records to refill, from index 0 (At); KeepUnused before returning them.
  std::vector<Record> Take() { return std::exchange(spare_, {}); }

  // The record to fill at `index`: a spare one below records.size(), else a new one appended.
  static Record& At(std::vector<Record>& records, size_t index) {
    return index < records.size() ? records[index] : records.emplace_back();
  }

  // Keeps the records past `filled` for the next Take (moved, with their strings' buffers) and
  // trims `records` to the filled ones.
  void KeepUnused(std::vector<Record>& records, size_t filled) {
    spare_.assign(std::make_move_iterator(records.begin() + static_cast<ptrdiff_t>(filled)),
                  std::make_move_iterator(records.end()));
    records.resize(filled);
  }

  // Consumer::Recycle: keeps whichever holds more records, what it has or what it is given.
  void Recycle(std::vector<Record> records) {
    if (records.size() > spare_.size()) spare_ = std::move(records);
  }

 private:
  std::vector<Record> spare_;
};

}  // namespace leftfold::internal::log
