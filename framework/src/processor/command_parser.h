// The processor's reading of a command record: views of the envelope's fields in the record's
// own bytes, checked as CommandEnvelope::ParseFromString checks them.
//
//   ParsedCommand command;
//   if (!ParseCommandEnvelope(record.value, command)) { /* malformed: REJECTED */ }
//   command.fields.command_id;  // a view into record.value
//
// Parsing into the generated message copied six strings into it, each checked for UTF-8 with
// protobuf's byte-at-a-time validator, and cleared the message first (callgrind: 2.3k
// instructions a command on the processing thread, 18% of it; 0.94k now). Deciding reads five
// of the strings and the result the correlation id, so they stay where they are: the bytes are
// read with protobuf's CodedInputStream, following its parser's limits where the stream's
// differ (command_parser.cc), and strings are checked for UTF-8 by a word-at-a-time ASCII test
// and protobuf's validator for the rest. The whole message is parsed only if a decide handler
// asks for CommandContext::envelope().
#pragma once

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "leftfold/aggregate.h"

namespace leftfold::internal::processor {

struct ParsedCommand {
  // Views into the parsed bytes, which `fields.serialized` is; `fields.envelope` is null.
  CommandFields fields;
  absl::string_view correlation_id;
  std::optional<int64_t> expected_version;
};

// Fills `out` and returns true iff leftfold.v1.CommandEnvelope's ParseFromString accepts
// `bytes` (the tests compare the two on valid, mutated and truncated envelopes). What it fills
// is what that message would hold: the last occurrence of a field wins, and occurrences of the
// payload merge. On false, `out` is unspecified.
bool ParseCommandEnvelope(absl::string_view bytes, ParsedCommand& out);

// True iff `text` is valid UTF-8 (as protobuf checks a string field when parsing).
bool IsValidUtf8(absl::string_view text);

}  // namespace leftfold::internal::processor
