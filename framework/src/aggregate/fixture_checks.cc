// The checks behind leftfold/testing/aggregate_fixture.h. They live in the library (not the
// header) so the fixture stays small and every failure text is written once.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "leftfold/testing/aggregate_checks.h"

namespace leftfold::internal::fixture {
namespace {

using google::protobuf::Any;
using google::protobuf::Message;

std::string OneLine(const Message& message) {
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  std::string text;
  printer.PrintToString(message, &text);
  if (!text.empty() && text.back() == ' ') text.pop_back();
  return absl::StrCat(message.GetTypeName(), " { ", text, text.empty() ? "}" : " }");
}

// An Any as a message of its type, or null when the type is not linked into this binary.
std::unique_ptr<Message> Unpack(const Any& any) {
  absl::string_view url = any.type_url();
  size_t slash = url.rfind('/');
  std::string name(slash == absl::string_view::npos ? url : url.substr(slash + 1));
  const google::protobuf::Descriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(name);
  if (descriptor == nullptr) return nullptr;
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor);
  if (prototype == nullptr) return nullptr;
  std::unique_ptr<Message> message(prototype->New());
  if (!message->ParseFromString(any.value())) return nullptr;
  return message;
}

std::string OneLine(const Any& any) {
  std::unique_ptr<Message> message = Unpack(any);
  if (message == nullptr) return absl::StrCat(any.type_url(), " (", any.value().size(), " bytes)");
  return OneLine(*message);
}

// "" when equal, else the differencer's report ("modified: amount: 5 -> 7").
std::string Diff(const Message& expected, const Message& actual) {
  std::string report;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&report);
  if (differencer.Compare(expected, actual)) return "";
  return report.empty() ? "differs" : report;
}

std::string Indent(absl::string_view text, absl::string_view prefix) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == absl::string_view::npos) end = text.size();
    absl::StrAppend(&out, prefix, text.substr(start, end - start), "\n");
    start = end + 1;
  }
  return out;
}

std::string DescribeOutcome(const DecideResult& result) {
  if (result.kind == DecideResult::Kind::kAccepted) {
    return absl::StrCat("ACCEPTED with ", result.events.size(), " event(s)");
  }
  return absl::StrCat(DecideKindName(result.kind), ": ", result.status.ToString());
}

std::string EventList(const std::vector<const Message*>& events) {
  if (events.empty()) return "  (none)\n";
  std::string out;
  for (size_t i = 0; i < events.size(); ++i) {
    absl::StrAppend(&out, "  [", i, "] ", OneLine(*events[i]), "\n");
  }
  return out;
}

std::string EventList(const std::vector<Any>& events) {
  if (events.empty()) return "  (none)\n";
  std::string out;
  for (size_t i = 0; i < events.size(); ++i) {
    absl::StrAppend(&out, "  [", i, "] ", OneLine(events[i]), "\n");
  }
  return out;
}

}  // namespace

std::string FoldGiven(const AggregateDefinition& definition,
                      const std::vector<const Message*>& events, Message& state) {
  for (size_t i = 0; i < events.size(); ++i) {
    Any any;
    any.PackFrom(*events[i]);
    absl::Status status = definition.Apply(state, any);
    if (!status.ok()) {
      return absl::StrCat("Given event [", i, "] ", OneLine(*events[i]),
                          " could not be applied: ", status.ToString());
    }
  }
  return "";
}

std::string CheckEmits(const DecideResult& result, const std::vector<const Message*>& expected) {
  if (result.kind != DecideResult::Kind::kAccepted) {
    return absl::StrCat("Expected the command to be accepted, but it was ", DescribeOutcome(result),
                        "\nExpected events:\n", EventList(expected));
  }
  std::string differences;
  if (expected.size() != result.events.size()) {
    absl::StrAppend(&differences, "  expected ", expected.size(), " event(s), got ",
                    result.events.size(), "\n");
  }
  for (size_t i = 0; i < expected.size() && i < result.events.size(); ++i) {
    const Any& actual_any = result.events[i];
    std::unique_ptr<Message> actual(expected[i]->New());
    if (!actual_any.UnpackTo(actual.get())) {  // false also when the types differ
      absl::StrAppend(&differences, "  [", i, "] expected ", expected[i]->GetTypeName(), ", got ",
                      OneLine(actual_any), "\n");
      continue;
    }
    std::string diff = Diff(*expected[i], *actual);
    if (!diff.empty()) {
      absl::StrAppend(&differences, "  [", i, "] ", expected[i]->GetTypeName(), ":\n",
                      Indent(diff, "      "));
    }
  }
  if (differences.empty()) return "";
  return absl::StrCat("Emitted events differ from the expected ones:\n", differences,
                      "Expected events:\n", EventList(expected), "Actual events:\n",
                      EventList(result.events));
}

std::string CheckRejects(const DecideResult& result, absl::StatusCode code,
                         absl::string_view message_substring) {
  absl::Status expected(code, message_substring);
  if (result.kind != DecideResult::Kind::kRejected) {
    std::string text =
        absl::StrCat("Expected the command to be REJECTED with ", absl::StatusCodeToString(code),
                     " \"", message_substring, "\", but it was ", DescribeOutcome(result));
    if (result.kind == DecideResult::Kind::kAccepted) {
      absl::StrAppend(&text, "\nActual events:\n", EventList(result.events));
    }
    return text;
  }
  if (result.status.code() != code ||
      !absl::StrContains(result.status.message(), message_substring)) {
    return absl::StrCat("Expected the rejection ", absl::StatusCodeToString(code), " containing \"",
                        message_substring, "\"\n  Actual rejection: ", result.status.ToString());
  }
  return "";
}

std::string CheckFails(const DecideResult& result, absl::string_view message_substring) {
  if (result.kind != DecideResult::Kind::kFailed) {
    std::string text = absl::StrCat("Expected the command to FAIL with \"", message_substring,
                                    "\", but it was ", DescribeOutcome(result));
    if (result.kind == DecideResult::Kind::kAccepted) {
      absl::StrAppend(&text, "\nActual events:\n", EventList(result.events));
    }
    return text;
  }
  if (!absl::StrContains(result.status.message(), message_substring)) {
    return absl::StrCat("Expected the failure to contain \"", message_substring,
                        "\"\n  Actual failure: ", result.status.ToString());
  }
  return "";
}

std::string CheckState(const DecideResult& result, const Message& expected) {
  if (result.kind != DecideResult::Kind::kAccepted || result.new_state == nullptr) {
    return absl::StrCat("Expected the command to be accepted with state ", OneLine(expected),
                        ", but it was ", DescribeOutcome(result));
  }
  if (expected.GetDescriptor() != result.new_state->GetDescriptor()) {
    return absl::StrCat("Expected a state of type ", expected.GetTypeName(),
                        ", but the state is a ", result.new_state->GetTypeName());
  }
  std::string diff = Diff(expected, *result.new_state);
  if (diff.empty()) return "";
  return absl::StrCat("State after the command differs:\n", Indent(diff, "    "),
                      "  Expected: ", OneLine(expected),
                      "\n  Actual:   ", OneLine(*result.new_state));
}

}  // namespace leftfold::internal::fixture
