// Internal to leftfold/testing/aggregate_fixture.h: the checks behind its Then... methods,
// compiled into the leftfold library, which does not depend on GoogleTest. Not for direct use.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "leftfold/aggregate.h"

namespace leftfold::internal::fixture {

// The checks behind the fixture, compiled into leftfold (no gtest there). Each returns "" when
// the expectation holds, else the failure text.
std::string FoldGiven(const AggregateDefinition& definition,
                      const std::vector<const google::protobuf::Message*>& events,
                      google::protobuf::Message& state);
std::string CheckEmits(const DecideResult& result,
                       const std::vector<const google::protobuf::Message*>& expected);
std::string CheckRejects(const DecideResult& result, absl::StatusCode code,
                         absl::string_view message_substring);
std::string CheckFails(const DecideResult& result, absl::string_view message_substring);
std::string CheckState(const DecideResult& result, const google::protobuf::Message& expected);

}  // namespace leftfold::internal::fixture
