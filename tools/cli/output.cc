#include "output.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/time_util.h"
#include "messages.h"

namespace leftfold::cli {

std::string FormatPosition(const v1::Position& position) {
  return absl::StrCat(position.topic(), "/", position.partition(), "@", position.offset());
}

void PrintResult(const GlobalOptions& global, const v1::CommandResult& result) {
  if (global.json) {
    std::cout << ToJson(result) << std::endl;
    return;
  }
  std::string line =
      absl::StrCat(v1::CommandResult::Outcome_Name(result.outcome()), " ", result.aggregate_type(),
                   "/", result.aggregate_id(), " version ", result.version());
  if (result.outcome() == v1::CommandResult::ACCEPTED) {
    absl::StrAppend(&line, " events ", result.event_count());
    if (result.event_positions_size() > 0) {
      absl::StrAppend(
          &line, " positions ",
          absl::StrJoin(result.event_positions(), ",", [](std::string* out, const v1::Position& p) {
            out->append(FormatPosition(p));
          }));
    }
  } else {
    absl::StrAppend(&line, " ", CodeName(result.code()), ": ", result.message());
  }
  absl::StrAppend(&line, " command ", result.command_id());
  if (!result.correlation_id().empty()) {
    absl::StrAppend(&line, " correlation ", result.correlation_id());
  }
  std::cout << line << std::endl;
}

void PrintEvent(const GlobalOptions& global, const v1::EventEnvelope& event) {
  if (global.json) {
    std::string json = ToJson(event);
    if (json.rfind("{\"error\"", 0) == 0) {
      // The payload's type is not linked into this binary: show the envelope without it.
      v1::EventEnvelope copy = event;
      copy.clear_payload();
      (*copy.mutable_metadata())["leftfold-cli.payload-type"] = event.payload().type_url();
      json = ToJson(copy);
    }
    std::cout << json << std::endl;
    return;
  }
  std::cout << event.aggregate_type() << "/" << event.aggregate_id() << " v" << event.version()
            << " " << TypeName(event.payload()) << " " << AnyToJson(event.payload()) << " command "
            << event.command_id();
  if (event.has_timestamp()) {
    std::cout << " at " << google::protobuf::util::TimeUtil::ToString(event.timestamp());
  }
  std::cout << std::endl;
}

}  // namespace leftfold::cli
