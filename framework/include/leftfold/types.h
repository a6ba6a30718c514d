// Distinct types for distinct ids, so an aggregate id can never be passed where a command id is
// expected and a version never where an offset is.
//
//   leftfold::AggregateId id("acc-42");
//   leftfold::Version v(3);
//   if (v > leftfold::Version(0)) { ... }
//   std::string raw = id.value();
//
// Values are plain, copyable and hashable (absl::Hash, std::hash); thread-safe like any value type.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <utility>

namespace leftfold {

// A strongly typed wrapper: `Tag` only distinguishes the types. Explicit construction on purpose.
template <typename T, typename Tag>
class NamedType {
 public:
  using value_type = T;

  constexpr NamedType() = default;
  constexpr explicit NamedType(T value) : value_(std::move(value)) {}

  constexpr const T& value() const& { return value_; }
  T&& value() && { return std::move(value_); }

  friend auto operator<=>(const NamedType&, const NamedType&) = default;
  friend bool operator==(const NamedType&, const NamedType&) = default;

  template <typename H>
  friend H AbslHashValue(H h, const NamedType& n) {
    return H::combine(std::move(h), n.value_);
  }
  friend std::ostream& operator<<(std::ostream& os, const NamedType& n) { return os << n.value_; }

 private:
  T value_{};
};

// The key of one aggregate instance (and of its records on every topic of its type).
using AggregateId = NamedType<std::string, struct AggregateIdTag>;
// Unique per command; the deduplication key.
using CommandId = NamedType<std::string, struct CommandIdTag>;
// An aggregate's version: the number of events it has; 0 before its first event.
using Version = NamedType<int64_t, struct VersionTag>;
// A record's offset in a topic partition.
using Offset = NamedType<int64_t, struct OffsetTag>;
// A topic partition number.
using Partition = NamedType<int32_t, struct PartitionTag>;

}  // namespace leftfold

template <typename T, typename Tag>
struct std::hash<leftfold::NamedType<T, Tag>> {
  size_t operator()(const leftfold::NamedType<T, Tag>& n) const {
    return std::hash<T>{}(n.value());
  }
};
