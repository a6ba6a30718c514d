// `leftfold get`, `leftfold scan`, `leftfold projector status|rebuild`: the ViewQuery service
// (proto/leftfold/v1/query_service.proto), with consistency tokens from `send` or from a command
// id (`get --after`, read-your-writes).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "aggregates.h"
#include "cli.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/client_context.h"
#include "leftfold/v1/gateway_service.grpc.pb.h"
#include "leftfold/v1/query_service.grpc.pb.h"
#include "messages.h"
#include "output.h"

namespace leftfold::cli {
namespace {

absl::Status BadToken(absl::string_view part, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad consistency token part '", part, "': ", why,
                   " (expected topic:partition:offset or topic/partition@offset, comma-separated,"
                   " or the output of `leftfold send --wait [--json]`)"));
}

// One "topic:partition:offset" or "topic/partition@offset" (topic names hold neither ':', '/'
// nor '@', Kafka allows only [a-zA-Z0-9._-]).
absl::StatusOr<v1::Position> ParsePosition(absl::string_view part) {
  std::string topic;
  absl::string_view partition, offset;
  if (size_t at = part.rfind('@'); at != absl::string_view::npos) {
    size_t slash = part.rfind('/', at);
    if (slash == absl::string_view::npos) return BadToken(part, "no '/' before '@'");
    topic = std::string(part.substr(0, slash));
    partition = part.substr(slash + 1, at - slash - 1);
    offset = part.substr(at + 1);
  } else {
    size_t last = part.rfind(':');
    size_t middle = last == absl::string_view::npos || last == 0 ? absl::string_view::npos
                                                                 : part.rfind(':', last - 1);
    if (middle == absl::string_view::npos) return BadToken(part, "not three ':'-separated fields");
    topic = std::string(part.substr(0, middle));
    partition = part.substr(middle + 1, last - middle - 1);
    offset = part.substr(last + 1);
  }
  v1::Position p;
  int32_t partition_number = 0;
  int64_t offset_number = 0;
  if (topic.empty()) return BadToken(part, "empty topic");
  if (!absl::SimpleAtoi(partition, &partition_number) || partition_number < 0) {
    return BadToken(part, "partition is not a number");
  }
  if (!absl::SimpleAtoi(offset, &offset_number) || offset_number < 0) {
    return BadToken(part, "offset is not a number");
  }
  p.set_topic(topic);
  p.set_partition(partition_number);
  p.set_offset(offset_number);
  return p;
}

absl::StatusOr<std::vector<v1::Position>> ParseJsonToken(const std::string& text) {
  google::protobuf::util::JsonParseOptions lenient;
  lenient.ignore_unknown_fields = true;
  std::vector<v1::Position> out;
  if (text.front() == '[') {
    v1::Positions positions;
    auto s = google::protobuf::util::JsonStringToMessage(absl::StrCat("{\"positions\":", text, "}"),
                                                         &positions, lenient);
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad consistency token (JSON array of positions): ", std::string(s.message())));
    }
    out.assign(positions.positions().begin(), positions.positions().end());
  } else {
    v1::CommandResult result;
    auto s = google::protobuf::util::JsonStringToMessage(text, &result, lenient);
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad consistency token (a `send --wait --json` result): ", std::string(s.message())));
    }
    if (result.event_positions().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the result of command ", result.command_id(), " (",
                       v1::CommandResult::Outcome_Name(result.outcome()),
                       ") has no event positions: nothing to wait for"));
    }
    out.assign(result.event_positions().begin(), result.event_positions().end());
  }
  return out;
}

// The event positions of `command_id`'s result. The result may not exist yet (a command sent
// without --wait): GetResult is asked again until `deadline`; NOT_FOUND after it.
absl::StatusOr<std::vector<v1::Position>> TokenOfCommand(const std::shared_ptr<grpc::Channel>& ch,
                                                         const ConsistencyOptions& options,
                                                         absl::Time deadline) {
  std::vector<std::string> types = {options.aggregate_type};
  if (options.aggregate_type.empty()) types = KnownAggregateTypes();
  auto stub = v1::CommandGateway::NewStub(ch);
  absl::Duration backoff = absl::Milliseconds(20);
  for (;;) {
    for (const std::string& type : types) {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(deadline));
      v1::GetResultRequest request;
      request.set_command_id(options.after_command_id);
      request.set_aggregate_type(type);
      v1::CommandResult result;
      grpc::Status s = stub->GetResult(&ctx, request, &result);
      if (s.ok()) {
        if (result.outcome() != v1::CommandResult::ACCEPTED) {
          std::cerr << "note: command " << options.after_command_id << " was "
                    << v1::CommandResult::Outcome_Name(result.outcome())
                    << ": no events to wait for" << std::endl;
        }
        return std::vector<v1::Position>(result.event_positions().begin(),
                                         result.event_positions().end());
      }
      // An unknown type (INVALID_ARGUMENT) only matters when the user named it.
      if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT && options.aggregate_type.empty()) {
        continue;
      }
      if (s.error_code() != grpc::StatusCode::NOT_FOUND) {
        return absl::Status(
            static_cast<absl::StatusCode>(s.error_code()),
            absl::StrCat("GetResult(", options.after_command_id, "): ", s.error_message()));
      }
    }
    // Not known yet. Polling (the result of a command sent without --wait may come any moment);
    // a subscription would cost a replay consumer on the gateway.
    if (absl::Now() + backoff >= deadline) {
      return absl::NotFoundError(absl::StrCat(
          "no result for command ", options.after_command_id, " within --timeout (types asked: ",
          absl::StrJoin(types, ", "), "; unknown id, or not processed yet)"));
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Milliseconds(500));
  }
}

// The token of --token or --after (none: empty). Exit code in `exit_code` terms of the status.
absl::StatusOr<std::vector<v1::Position>> ResolveToken(const std::shared_ptr<grpc::Channel>& ch,
                                                       const ConsistencyOptions& options,
                                                       absl::Time deadline) {
  if (!options.after_command_id.empty() && !options.token.empty()) {
    return absl::InvalidArgumentError("--after and --token: give one of them");
  }
  if (!options.token.empty()) return ParseToken(options.token);
  if (!options.after_command_id.empty()) return TokenOfCommand(ch, options, deadline);
  return std::vector<v1::Position>();
}

void PrintRow(const GlobalOptions& global, const std::string& key,
              const google::protobuf::Any& row) {
  if (global.json) {
    v1::ViewRow r;
    r.set_key(key);
    *r.mutable_row() = row;
    std::cout << ToJson(r) << std::endl;
  } else {
    std::cout << key << "\t" << AnyToJson(row) << std::endl;
  }
}

}  // namespace

absl::StatusOr<std::vector<v1::Position>> ParseToken(const std::string& input) {
  std::string text(absl::StripAsciiWhitespace(input));
  if (text.empty()) return absl::InvalidArgumentError("empty consistency token");
  if (text.front() == '{' || text.front() == '[') return ParseJsonToken(text);
  // A whole human `send --wait` line: the word after "positions".
  std::vector<absl::string_view> words =
      absl::StrSplit(text, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  if (words.size() > 1) {
    auto it = std::find(words.begin(), words.end(), "positions");
    if (it == words.end() || it + 1 == words.end()) {
      return absl::InvalidArgumentError(
          "consistency token: a `send` line without positions (was the command accepted, with "
          "--wait?)");
    }
    text = std::string(*(it + 1));
  }
  std::vector<v1::Position> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    absl::StatusOr<v1::Position> p = ParsePosition(part);
    if (!p.ok()) return p.status();
    out.push_back(*std::move(p));
  }
  if (out.empty()) return absl::InvalidArgumentError("empty consistency token");
  return out;
}

std::vector<std::string> KnownProjectors() { return {"account_balances"}; }

int RunGet(const GlobalOptions& global, const GetOptions& options) {
  absl::Time deadline = absl::Now() + options.timeout;
  std::shared_ptr<grpc::Channel> channel = Connect(global);
  v1::GetRequest request;
  request.set_view(options.view);
  request.set_key(options.key);
  absl::StatusOr<std::vector<v1::Position>> token =
      ResolveToken(channel, options.consistency, deadline);
  if (!token.ok())
    return ReportLocalError(global, token.status(),
                            ExitCodeFor(static_cast<grpc::StatusCode>(token.status().code())));
  request.mutable_consistency_token()->Assign(token->begin(), token->end());
  auto stub = v1::ViewQuery::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(deadline));
  InterruptScope interrupt(&ctx);
  v1::GetResponse response;
  grpc::Status s = stub->Get(&ctx, request, &response);
  if (!s.ok()) return ReportError(global, s);
  if (global.json) {
    std::cout << ToJson(response) << std::endl;
  } else {
    std::cout << AnyToJson(response.row()) << std::endl;
  }
  return kOk;
}

int RunScan(const GlobalOptions& global, const ScanOptions& options) {
  if (!options.prefix.empty() && (!options.start.empty() || !options.end.empty())) {
    return ReportLocalError(
        global, absl::InvalidArgumentError("--prefix and --start/--end: give one of them"), kUsage);
  }
  v1::ScanRequest request;
  request.set_view(options.view);
  request.set_prefix(options.prefix);
  request.set_start_key(options.start);
  request.set_end_key(options.end);
  request.set_limit(options.limit);
  if (!options.page_token.empty()) {
    std::string bytes;
    if (!absl::Base64Unescape(options.page_token, &bytes)) {
      return ReportLocalError(
          global, absl::InvalidArgumentError("--page-token: not base64 (copy it as printed)"),
          kUsage);
    }
    request.set_page_token(bytes);
  }
  absl::Time deadline = absl::Now() + options.timeout;
  std::shared_ptr<grpc::Channel> channel = Connect(global);
  absl::StatusOr<std::vector<v1::Position>> token =
      ResolveToken(channel, options.consistency, deadline);
  if (!token.ok())
    return ReportLocalError(global, token.status(),
                            ExitCodeFor(static_cast<grpc::StatusCode>(token.status().code())));
  // Every page passes it; after the first the view is past it and nothing waits.
  request.mutable_consistency_token()->Assign(token->begin(), token->end());
  auto stub = v1::ViewQuery::NewStub(channel);
  for (;;) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(deadline));
    InterruptScope interrupt(&ctx);
    v1::ScanResponse response;
    grpc::Status s = stub->Scan(&ctx, request, &response);
    if (!s.ok()) return ReportError(global, s);
    for (const v1::ViewRow& row : response.rows()) PrintRow(global, row.key(), row.row());
    if (response.next_page_token().empty()) return kOk;
    if (!options.all) {
      std::string token = absl::Base64Escape(response.next_page_token());
      if (global.json) {
        std::cout << "{\"nextPageToken\":\"" << token << "\"}" << std::endl;
      } else {
        std::cerr << "more rows: --page-token " << token << std::endl;
      }
      return kOk;
    }
    request.set_page_token(response.next_page_token());
  }
}

int RunProjectorStatus(const GlobalOptions& global, const ProjectorStatusOptions& options) {
  std::vector<std::string> names = {options.name};
  if (options.name.empty()) names = KnownProjectors();
  auto stub = v1::ViewQuery::NewStub(Connect(global));
  int shown = 0;
  for (const std::string& name : names) {
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineAfter(options.timeout));
    InterruptScope interrupt(&ctx);
    v1::LagRequest request;
    request.set_projector(name);
    v1::LagResponse response;
    grpc::Status s = stub->Lag(&ctx, request, &response);
    // Without a name, projectors this server does not run are skipped.
    if (s.error_code() == grpc::StatusCode::NOT_FOUND && options.name.empty()) continue;
    if (!s.ok()) return ReportError(global, s);
    ++shown;
    if (global.json) {
      std::string json = ToJson(response);
      std::cout << "{\"projector\":\"" << name << "\"," << json.substr(1) << std::endl;
      continue;
    }
    int64_t total = 0;
    for (const v1::PartitionLag& p : response.partitions()) total += p.lag();
    std::cout << name << " (lag " << total << ")" << std::endl;
    for (const v1::PartitionLag& p : response.partitions()) {
      std::cout << "  " << p.topic() << "/" << p.partition() << "  checkpoint " << p.checkpoint()
                << "  end " << p.end_offset() << "  lag " << p.lag();
      if (!p.halted().empty()) std::cout << "  HALTED: " << p.halted();
      std::cout << std::endl;
    }
  }
  if (shown == 0) {
    return ReportLocalError(
        global,
        absl::NotFoundError(absl::StrCat("none of the known projectors (",
                                         absl::StrJoin(names, ", "), ") runs at ", global.server,
                                         "; name one: leftfold projector status NAME")),
        kNotFound);
  }
  return kOk;
}

namespace {

// "[#########...........]  45.0%  4500/10000 events  1234 ev/s  ETA 4s"
std::string ProgressLine(const v1::RebuildProgress& p) {
  constexpr int kWidth = 30;
  double fraction =
      p.events_total() <= 0 ? 1.0 : static_cast<double>(p.events_done()) / p.events_total();
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int filled = static_cast<int>(fraction * kWidth);
  std::string eta =
      p.eta_seconds() < 0
          ? std::string("?")
          : absl::FormatDuration(absl::Seconds(static_cast<int64_t>(p.eta_seconds())));
  char head[64];
  std::snprintf(head, sizeof(head), "%5.1f%%", fraction * 100);
  return absl::StrCat("[", std::string(filled, '#'), std::string(kWidth - filled, '.'), "] ", head,
                      "  ", p.events_done(), "/", p.events_total(), " events  ",
                      static_cast<int64_t>(p.events_per_second()), " ev/s  ETA ", eta,
                      p.swapped() ? "  swapped" : "");
}

}  // namespace

int RunProjectorRebuild(const GlobalOptions& global, const ProjectorRebuildOptions& options) {
  auto stub = v1::ViewQuery::NewStub(Connect(global));
  grpc::ClientContext ctx;
  ctx.set_deadline(DeadlineAfter(options.timeout));
  InterruptScope interrupt(&ctx);
  v1::RebuildRequest request;
  request.set_projector(options.name);
  std::unique_ptr<grpc::ClientReader<v1::RebuildProgress>> reader = stub->Rebuild(&ctx, request);
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  absl::Time last_line = absl::InfinitePast();
  v1::RebuildProgress progress, last;
  bool any = false;
  while (reader->Read(&progress)) {
    any = true;
    last = progress;
    if (tty) {
      std::cerr << "\r" << ProgressLine(progress) << std::flush;
    } else if (progress.swapped() || absl::Now() - last_line >= absl::Seconds(1)) {
      last_line = absl::Now();
      std::cerr << ProgressLine(progress) << std::endl;
    }
  }
  if (tty && any) std::cerr << std::endl;
  grpc::Status s = reader->Finish();
  if (!s.ok()) return ReportError(global, s);
  if (global.json) {
    std::cout << ToJson(last) << std::endl;
  } else {
    std::cout << options.name << " rebuilt: " << last.events_done() << " events, view swapped"
              << std::endl;
  }
  return kOk;
}

}  // namespace leftfold::cli
