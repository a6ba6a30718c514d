// A bounded LRU of aggregate states, so hot aggregates skip the RocksDB read and the parse.
//
//   StateCache cache(100000);
//   cache.Put("3/acc-1", {Version(7), state});
//   if (const StateCache::Entry* e = cache.Get("3/acc-1")) { ... e->state ... }
//
// Holds only committed states (the processor puts them after its transaction committed).
// Owned by the processor thread; not thread-safe.
#pragma once

#include <list>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "google/protobuf/message.h"

namespace leftfold::internal::processor {

class StateCache {
 public:
  struct Entry {
    int64_t version = 0;
    std::shared_ptr<const google::protobuf::Message> state;
  };

  explicit StateCache(size_t capacity) : capacity_(capacity) {}

  const Entry* Get(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }

  void Put(const std::string& key, Entry entry) {
    if (capacity_ == 0) return;
    if (auto it = index_.find(key); it != index_.end()) {
      it->second->second = std::move(entry);
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    order_.emplace_front(key, std::move(entry));
    index_.emplace(key, order_.begin());
    if (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }

  void Clear() {
    index_.clear();
    order_.clear();
  }

  size_t size() const { return order_.size(); }

 private:
  using List = std::list<std::pair<std::string, Entry>>;
  size_t capacity_;
  List order_;
  absl::flat_hash_map<std::string, List::iterator> index_;
};

}  // namespace leftfold::internal::processor
