// Protobuf messages by name, for the `leftfold` CLI: turns a command name the user typed
// ("Deposit" or "bank.v1.Deposit") into a descriptor of the linked generated pool, JSON into a
// packed payload, and stored payloads back into JSON.
//
//   absl::StatusOr<const google::protobuf::Descriptor*> d = ResolveMessageType("Deposit");
//   absl::StatusOr<google::protobuf::Any> payload = JsonToAny(**d, R"({"amount": 50})");
//   std::string text = AnyToJson(*payload);   // {"amount":"50"}
//
// Only messages compiled into this binary are known (every .proto of the repo is, through
// leftfold_proto). All functions are thread-safe (the generated pool is).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace leftfold::cli {

// Every message name of the generated pool (nested ones too), sorted.
std::vector<std::string> AllMessageNames();

// A full name is looked up as it is; a short name ("Deposit") must name exactly one message of
// the pool. NOT_FOUND when nothing matches; INVALID_ARGUMENT listing the candidates when several
// do.
absl::StatusOr<const google::protobuf::Descriptor*> ResolveMessageType(const std::string& name);

// Parses `json` as a message of type `descriptor` (protobuf's JSON mapping) and packs it.
// INVALID_ARGUMENT with the parser's message (it names the offending field) on bad input.
absl::StatusOr<google::protobuf::Any> JsonToAny(const google::protobuf::Descriptor& descriptor,
                                                const std::string& json);

// One-line JSON of a message; Any payloads inside are rendered through the generated pool.
// A payload of a type this binary does not know is shown as its type URL and size instead of
// failing the whole line.
std::string ToJson(const google::protobuf::Message& message);

// One-line JSON of the message packed in `any`, or a note when its type is unknown here.
std::string AnyToJson(const google::protobuf::Any& any);

// "bank.v1.Deposited" from "type.googleapis.com/bank.v1.Deposited".
std::string TypeName(const google::protobuf::Any& any);

}  // namespace leftfold::cli
