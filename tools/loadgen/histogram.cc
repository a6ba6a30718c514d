#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace leftfold::bench {
namespace {

constexpr int kSubBits = 7;                // 128 sub-buckets per power of two
constexpr int64_t kExact = 2 << kSubBits;  // values below 256 us have their own bucket
constexpr int kMaxExponent = 42;           // about 50 days in microseconds: plenty
constexpr int kBuckets = kExact + (kMaxExponent - kSubBits) * (1 << kSubBits);

}  // namespace

LatencyHistogram::LatencyHistogram() : buckets_(kBuckets, 0) {}

int LatencyHistogram::BucketOf(int64_t micros) {
  if (micros < kExact) return static_cast<int>(std::max<int64_t>(micros, 0));
  int exponent = std::bit_width(static_cast<uint64_t>(micros)) - 1;  // >= kSubBits + 1
  exponent = std::min(exponent, kMaxExponent);
  int shift = exponent - kSubBits;
  int64_t top = std::min<int64_t>(micros >> shift, (2 << kSubBits) - 1);  // [128, 255]
  return static_cast<int>(kExact + (exponent - kSubBits - 1) * (1 << kSubBits) +
                          (top - (1 << kSubBits)));
}

int64_t LatencyHistogram::UpperBoundOf(int bucket) {
  if (bucket < kExact) return bucket;
  int rest = bucket - static_cast<int>(kExact);
  int exponent = rest / (1 << kSubBits) + kSubBits + 1;
  int64_t top = rest % (1 << kSubBits) + (1 << kSubBits);
  int shift = exponent - kSubBits;
  return ((top + 1) << shift) - 1;
}

void LatencyHistogram::Record(absl::Duration latency) {
  int64_t us = absl::ToInt64Microseconds(latency);
  if (us < 0) us = 0;
  ++buckets_[BucketOf(us)];
  ++count_;
  max_us_ = std::max(max_us_, us);
  sum_us_ += static_cast<double>(us);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_us_ = std::max(max_us_, other.max_us_);
  sum_us_ += other.sum_us_;
}

double LatencyHistogram::QuantileMillis(double q) const {
  if (count_ == 0) return 0;
  int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * count_)));
  int64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      return static_cast<double>(std::min(UpperBoundOf(static_cast<int>(i)), max_us_)) / 1000.0;
    }
  }
  return MaxMillis();
}

double LatencyHistogram::MeanMillis() const {
  return count_ == 0 ? 0 : sum_us_ / static_cast<double>(count_) / 1000.0;
}

}  // namespace leftfold::bench
