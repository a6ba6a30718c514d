// A log-bucketed latency histogram for the load generator: constant memory, O(1) record, and
// quantiles within 1% of the true value (128 buckets per power of two, exact below 256 us).
//
//   leftfold::bench::LatencyHistogram h;
//   h.Record(absl::Milliseconds(3));
//   double p99_ms = h.QuantileMillis(0.99);
//
// A value type; not thread-safe (the load generator records under its own mutex).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/time/time.h"

namespace leftfold::bench {

class LatencyHistogram {
 public:
  LatencyHistogram();

  void Record(absl::Duration latency);
  void Merge(const LatencyHistogram& other);

  int64_t count() const { return count_; }
  // The smallest recorded latency L with at least q * count() values <= L (bucket upper bound,
  // capped at the exact maximum), in milliseconds. 0 when empty.
  double QuantileMillis(double q) const;
  double MaxMillis() const { return static_cast<double>(max_us_) / 1000.0; }
  double MeanMillis() const;

 private:
  static int BucketOf(int64_t micros);
  static int64_t UpperBoundOf(int bucket);

  std::vector<int64_t> buckets_;
  int64_t count_ = 0;
  int64_t max_us_ = 0;
  double sum_us_ = 0;
};

}  // namespace leftfold::bench
