// A bounded, approximately least-recently-used cache of aggregate states (see Touch), so hot
// aggregates skip the RocksDB read and the parse.
//
//   StateCache cache(100000);
//   cache.Put("3/acc-1", {Version(7), state});
//   if (const StateCache::Entry* e = cache.Get("3/acc-1")) { ... e->state ... }
//
// Holds only committed states (the processor puts them after its transaction committed). An
// entry that leaves other than by being replaced (the least recently used one on overflow, every
// one on Clear, and with capacity 0 each one at once) is handed to the eviction callback: the
// processor keeps the ones its store has not written yet.
// Owned by the processor thread; not thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "google/protobuf/message.h"

namespace leftfold::internal::processor {

class StateCache {
 public:
  struct Entry {
    int64_t version = 0;
    std::shared_ptr<const google::protobuf::Message> state;
    // The store write that holds this state (StoreWriter's sequence number); 0: read from the
    // store.
    uint64_t seq = 0;
  };
  using EvictFn = std::function<void(const std::string& key, Entry& entry)>;

  explicit StateCache(size_t capacity, EvictFn on_evict = {})
      : capacity_(capacity), on_evict_(std::move(on_evict)) {}

  const Entry* Get(const std::string& key) { return Get(key, index_.hash_function()(key)); }
  // `hash` is what the index's hasher (absl's default for std::string) gives `key`.
  const Entry* Get(const std::string& key, size_t hash) {
    auto it = index_.find(key, hash);
    if (it == index_.end()) return nullptr;
    Touch(it->second);
    return &it->second->entry;
  }

  void Put(const std::string& key, Entry entry) {
    Put(key, index_.hash_function()(key), std::move(entry));
  }
  // `hash` as for Get.
  void Put(const std::string& key, size_t hash, Entry entry) {
    if (capacity_ == 0) {
      if (on_evict_) on_evict_(key, entry);
      return;
    }
    if (auto it = index_.find(key, hash); it != index_.end()) {
      it->second->entry = std::move(entry);
      Touch(it->second);
      return;
    }
    order_.push_front({.key = key, .entry = std::move(entry), .moved = ++moves_});
    index_.emplace(key, order_.begin());
    if (order_.size() > capacity_) {
      if (on_evict_) on_evict_(order_.back().key, order_.back().entry);
      index_.erase(order_.back().key);
      order_.pop_back();
    }
  }

  void Clear() {
    if (on_evict_) {
      for (Node& node : order_) on_evict_(node.key, node.entry);
    }
    index_.clear();
    order_.clear();
  }

  size_t size() const { return order_.size(); }

 private:
  struct Node {
    std::string key;
    Entry entry;
    uint64_t moved = 0;  // moves_ when it last went to the front
  };
  using List = std::list<Node>;

  // Moves a used entry to the front, unless it went there less than half a cache ago: each move
  // to the front pushes an entry back by at most one place, so it is still in the front half,
  // far from eviction at the back, and moving it would touch its neighbours (cold memory, ~2
  // cache misses per use). So the order is the last move's, not the last use's: an entry used
  // at least once per half a cache of insertions and moves is never evicted. With a capacity of
  // 2 or 3 every use moves it (exact LRU).
  void Touch(List::iterator it) {
    if (moves_ - it->moved < std::max<size_t>(capacity_ / 2, 1)) return;
    order_.splice(order_.begin(), order_, it);
    it->moved = ++moves_;
  }

  size_t capacity_;
  EvictFn on_evict_;
  List order_;
  absl::flat_hash_map<std::string, List::iterator> index_;
  uint64_t moves_ = 0;  // insertions and moves to the front so far
};

// Reuses superseded state messages. An accepted command makes a new state (a copy of the old
// one with its events applied); without reuse each cost a New, an allocation per string field,
// and later the frees of both. A message that comes back keeps its strings' capacity, and
// DecideInto clears and refills it.
//
//   StatePool pool(definition.NewState(), 4096);
//   decided.new_state = pool.Take();            // a message of the state's type, any content
//   definition.DecideInto(state, command, version, decided);
//   std::shared_ptr<const Message> shared = pool.Share(std::move(decided.new_state));
//   // ...when the last copy of `shared` goes, the message is back in the pool.
//
// Not thread-safe: every Take, Share and release of a shared state happens on the owner's
// thread (others may read the states). Must outlive every state it shared.
class StatePool {
 public:
  // `prototype` is an (empty) state message; Take makes new ones like it.
  StatePool(std::unique_ptr<google::protobuf::Message> prototype, size_t capacity)
      : prototype_(std::move(prototype)), capacity_(capacity) {}
  StatePool(const StatePool&) = delete;
  StatePool& operator=(const StatePool&) = delete;
  ~StatePool() {
    for (void* block : free_blocks_) ::operator delete(block);
  }

  std::unique_ptr<google::protobuf::Message> Take() {
    if (free_.empty()) return std::unique_ptr<google::protobuf::Message>(prototype_->New());
    std::unique_ptr<google::protobuf::Message> state = std::move(free_.back());
    free_.pop_back();
    return state;
  }

  std::shared_ptr<const google::protobuf::Message> Share(
      std::unique_ptr<google::protobuf::Message> state) {
    return std::shared_ptr<const google::protobuf::Message>(
        state.release(),
        [this](const google::protobuf::Message* released) {
          auto* message = const_cast<google::protobuf::Message*>(released);
          if (free_.size() < capacity_) {
            free_.emplace_back(message);
          } else {
            delete message;
          }
        },
        BlockAllocator<char>(this));
  }

  size_t free_count() const { return free_.size(); }
  // Control blocks kept for the next Share.
  size_t free_block_count() const { return free_blocks_.size(); }

 private:
  // Allocates the control block of each shared state from the pool's spare blocks, like the
  // states themselves: otherwise every Share (one per accepted command) cost a malloc, and every
  // release a free, of a block last touched when that aggregate last changed (cold).
  template <typename T>
  struct BlockAllocator {
    using value_type = T;
    explicit BlockAllocator(StatePool* owner) : pool(owner) {}
    template <typename U>
    BlockAllocator(const BlockAllocator<U>& other) : pool(other.pool) {}  // NOLINT: rebinding
    T* allocate(size_t n) { return static_cast<T*>(pool->AllocateBlock(n * sizeof(T))); }
    void deallocate(T* block, size_t n) { pool->FreeBlock(block, n * sizeof(T)); }
    template <typename U>
    bool operator==(const BlockAllocator<U>& other) const {
      return pool == other.pool;
    }
    StatePool* pool;
  };

  // Every control block Share makes has the same type, hence the same size: the first one
  // allocated sets it, and only blocks of that size are kept.
  void* AllocateBlock(size_t size) {
    if (size == block_size_ && !free_blocks_.empty()) {
      void* block = free_blocks_.back();
      free_blocks_.pop_back();
      return block;
    }
    if (block_size_ == 0) block_size_ = size;
    return ::operator new(size);
  }
  void FreeBlock(void* block, size_t size) {
    if (size == block_size_ && free_blocks_.size() < capacity_) {
      free_blocks_.push_back(block);
    } else {
      ::operator delete(block);
    }
  }

  const std::unique_ptr<google::protobuf::Message> prototype_;
  const size_t capacity_;
  std::vector<std::unique_ptr<google::protobuf::Message>> free_;
  size_t block_size_ = 0;
  std::vector<void*> free_blocks_;
};

}  // namespace leftfold::internal::processor
