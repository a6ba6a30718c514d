#include "processor/dedup_filter.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace leftfold::internal::processor {
namespace {

// A key's bits all lie in one 512-bit block (a cache line): a probe reads one line.
constexpr size_t kWordsPerBlock = 8;
constexpr size_t kBitsPerBlock = 64 * kWordsPerBlock;
constexpr size_t kBitsPerKey = 12;
// Bits set per key, 9 bits of the mixed hash each. With 12 bits a key, ~0.5% false positives.
constexpr int kProbes = 6;

size_t BlockOf(uint64_t hash, size_t blocks) {
  return static_cast<size_t>((static_cast<unsigned __int128>(hash) * blocks) >> 64);
}

// The bit positions within the block: from the hash's low half, mixed, where BlockOf uses
// mostly its high half.
uint64_t BitsOf(uint64_t hash) { return (hash ^ (hash >> 32)) * 0x9E3779B97F4A7C15ULL; }

}  // namespace

DedupFilter::DedupFilter(Options options) : options_(options) {
  options_.generation_keys =
      std::clamp<size_t>(options_.generation_keys, 1, std::max<size_t>(options_.max_keys, 1));
  next_capacity_ = std::max<size_t>(options_.generation_keys / 16, 1);
  Begin();
}

uint64_t DedupFilter::Hash(absl::string_view command_id) {
  return static_cast<uint64_t>(absl::Hash<absl::string_view>()(command_id));
}

void DedupFilter::Begin() {
  Generation& g = generations_.emplace_back();
  g.capacity = next_capacity_;
  next_capacity_ = std::min(next_capacity_ * 2, options_.generation_keys);
  g.blocks = (g.capacity * kBitsPerKey + kBitsPerBlock - 1) / kBitsPerBlock;
  g.words.assign(g.blocks * kWordsPerBlock, 0);
}

void DedupFilter::Add(uint64_t hash, absl::Time stamp, absl::Time now) {
  if (!on_) return;
  if (generations_.back().keys >= generations_.back().capacity) {
    // Generations whose keys are all past the window go (the full one too, if it is).
    while (!generations_.empty() && generations_.front().newest + options_.window < now) {
      keys_ -= generations_.front().keys;
      generations_.pop_front();
    }
    if (keys_ + next_capacity_ > options_.max_keys) {
      TurnOff();
      return;
    }
    Begin();
  }
  Generation& g = generations_.back();
  uint64_t* block = &g.words[BlockOf(hash, g.blocks) * kWordsPerBlock];
  uint64_t bits = BitsOf(hash);
  for (int i = 0; i < kProbes; ++i, bits >>= 9) {
    const unsigned bit = static_cast<unsigned>(bits & (kBitsPerBlock - 1));
    block[bit / 64] |= uint64_t{1} << (bit % 64);
  }
  ++g.keys;
  ++keys_;
  if (g.newest < stamp) g.newest = stamp;
  if (g.newest < now) g.newest = now;
}

bool DedupFilter::MayContain(uint64_t hash) const {
  if (!on_) return true;
  const uint64_t mixed = BitsOf(hash);
  for (const Generation& g : generations_) {
    const uint64_t* block = &g.words[BlockOf(hash, g.blocks) * kWordsPerBlock];
    uint64_t bits = mixed;
    bool all = true;
    for (int i = 0; i < kProbes && all; ++i, bits >>= 9) {
      const unsigned bit = static_cast<unsigned>(bits & (kBitsPerBlock - 1));
      all = (block[bit / 64] >> (bit % 64)) & 1;
    }
    if (all) return true;
  }
  return false;
}

void DedupFilter::TurnOff() {
  on_ = false;
  generations_.clear();
  keys_ = 0;
}

}  // namespace leftfold::internal::processor
