// The aggregate definitions the `leftfold` CLI knows, so `inspect` can fold events into state.
// A type not listed here is inspected without state (events only).
//
//   const leftfold::AggregateDefinition* d = FindAggregate("bank.account");
//   if (d != nullptr) { auto state = d->NewState(); d->Apply(*state, event.payload()); }
//
// Add a domain by linking its library into tools/cli and listing its definition in
// aggregates.cc. Built once on first use; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "leftfold/aggregate.h"

namespace leftfold::cli {

// nullptr for an unknown type.
const AggregateDefinition* FindAggregate(const std::string& type);

// The known types, sorted.
std::vector<std::string> KnownAggregateTypes();

}  // namespace leftfold::cli
