// Which command ids a partition store may hold a dedup entry for, in memory: a lookup of an id
// that it rules out (nearly every new command) reads neither the dedup buffers nor RocksDB.
//
//   DedupFilter filter({.window = absl::Hours(24)});
//   filter.Add(DedupFilter::Hash(command_id), stamp, absl::Now());  // for every entry written
//   if (!filter.MayContain(DedupFilter::Hash(command_id))) { /* no result: a new command */ }
//
// A RocksDB MultiGet costs ~0.9k instructions a key even when no file holds it (the per-key
// contexts it builds), plus a bloom probe of every dedup file: with the filter the processing
// thread took 3.6 instead of 4.2 µs a command, and the processor ran 1.09–1.15x as many
// commands a second (docs/benchmarks.md, "Session 21").
//
// Bloom filters, one per generation of keys: a full generation is closed and a new one begun,
// and a generation is dropped once all of its keys are older than the window (their entries are
// then expired: a read of one only extends deduplication, see PartitionStore). A key is in the
// filter as long as its entry answers duplicates, so a negative answer is always right; a
// positive one may be false (~0.5% for a full generation), and the store is read.
//
// Memory is ~12 bits a key held. Past `max_keys` in the window the filter turns off for good
// (MayContain answers true, memory is freed): a store then reads RocksDB for every id, as
// without it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace leftfold::internal::processor {

class DedupFilter {
 public:
  struct Options {
    absl::Duration window = absl::Hours(24);
    // Keys per generation. The first takes 1/16 of this, each next one twice the last: a
    // store that holds few ids keeps a small filter. A generation's filter takes ~1.5 bytes a
    // key of its size from its start.
    size_t generation_keys = size_t{1} << 20;
    // Keys held in all generations before the filter turns off.
    size_t max_keys = size_t{8} << 20;
  };

  explicit DedupFilter(Options options);

  // The hash Add and MayContain take, of a command id (its store key need not be built).
  static uint64_t Hash(absl::string_view command_id);
  // Adds a key whose entry carries `stamp` (its processed-at time), written at `now`.
  void Add(uint64_t hash, absl::Time stamp, absl::Time now);
  // False only if no key of this hash was added (or all were dropped with their generation).
  bool MayContain(uint64_t hash) const;
  // False once it held more than max_keys: MayContain answers true from then on.
  bool on() const { return on_; }
  // Keys in the generations held.
  size_t keys() const { return keys_; }
  size_t generations() const { return generations_.size(); }

 private:
  struct Generation {
    std::vector<uint64_t> words;  // kWordsPerBlock words per block
    size_t blocks = 0;
    size_t capacity = 0;
    size_t keys = 0;
    absl::Time newest = absl::InfinitePast();  // the latest stamp or write time of its keys
  };
  void Begin();
  // Turns the filter off for good and frees its memory.
  void TurnOff();

  Options options_;
  std::deque<Generation> generations_;  // oldest first; the last one takes new keys
  size_t keys_ = 0;
  size_t next_capacity_ = 0;  // of the next generation
  bool on_ = true;
};

}  // namespace leftfold::internal::processor
