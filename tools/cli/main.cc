// leftfold: the command-line client of a leftfold gateway (send commands, tail results and
// events, inspect an aggregate) and of a Kafka cluster's aggregate topics. See docs/cli.md.
//
//   leftfold send bank.account acc-1 OpenAccount '{"owner": "alice"}' --wait
//   leftfold tail events --type bank.account --from-start --count 10
//   leftfold inspect bank.account acc-1
//   leftfold get account_balances acc-1 --after <command id>
//   leftfold scan account_balances --prefix by_owner/alice/
//   leftfold projector status
//   leftfold projector rebuild account_balances
//   leftfold topics list --brokers 127.0.0.1:9092
#include <cstdlib>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "cli.h"

namespace {

using leftfold::cli::ExitCode;

// Kafka accepts more, but a typo (40000 for 4) would make a topic that cannot be shrunk.
constexpr int kMaxPartitions = 10000;

// "10s", "500ms", "2m" (absl durations), or a plain number of seconds.
bool ParseTimeout(const std::string& text, absl::Duration& out) {
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds)) {
    out = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &out)) {
    return false;
  }
  return out > absl::ZeroDuration();
}

CLI::Validator DurationValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        absl::Duration d;
        return ParseTimeout(text, d) ? "" : "not a positive duration (e.g. 10s, 500ms): " + text;
      },
      "DURATION");
}

// --after / --token / --type of get and scan.
void AddConsistencyOptions(CLI::App* cmd, leftfold::cli::ConsistencyOptions& options) {
  CLI::Option* after = cmd->add_option(
      "--after", options.after_command_id,
      "read your writes: wait until the view applied this command's events (the positions of "
      "its result, from GetResult; waits for the result too)");
  cmd->add_option("--token", options.token,
                  "wait until the view applied these positions: topic:partition:offset,... or "
                  "whatever `send --wait [--json]` printed")
      ->excludes(after);
  cmd->add_option("--type", options.aggregate_type,
                  "aggregate type of the --after command (default: every type the CLI knows)");
}

}  // namespace

int main(int argc, char** argv) {
  leftfold::cli::InstallInterruptHandler();

  leftfold::cli::GlobalOptions global;
  if (const char* server = std::getenv("LEFTFOLD_SERVER"); server != nullptr && *server) {
    global.server = server;
  }
  if (const char* prefix = std::getenv("LEFTFOLD_TOPIC_PREFIX"); prefix != nullptr) {
    global.topic_prefix = prefix;
  }

  CLI::App app{
      "leftfold: send commands to a leftfold gateway, watch results and events, "
      "inspect aggregates, query projector views, manage Kafka topics."};
  app.footer(leftfold::cli::kExitCodesHelp);
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand
  app.add_option("--server", global.server,
                 "gateway address HOST:PORT (default $LEFTFOLD_SERVER or 127.0.0.1:50051)")
      ->capture_default_str();
  app.add_flag("--json", global.json, "machine output: one JSON document per line");
  app.add_option("--topic-prefix", global.topic_prefix,
                 "the server's topic prefix (default $LEFTFOLD_TOPIC_PREFIX)");
  app.add_option("--partitions", global.partitions,
                 "partitions of the aggregate topics (default: asked from the gateway)")
      ->check(CLI::PositiveNumber);

  // send
  leftfold::cli::SendOptions send;
  std::string send_timeout = "10s";
  int64_t expected_version = 0;
  CLI::App* send_cmd = app.add_subcommand(
      "send",
      "send a command: Submit (prints command id and position) or, with --wait, Execute "
      "(prints the result)");
  send_cmd->add_option("TYPE", send.aggregate_type, "aggregate type, e.g. bank.account")
      ->required();
  send_cmd->add_option("ID", send.aggregate_id, "aggregate id")->required();
  send_cmd
      ->add_option("COMMAND", send.command,
                   "command message name: full (bank.v1.Deposit) or short (Deposit)")
      ->required();
  send_cmd->add_option("JSON", send.json, "the command as JSON (protobuf JSON mapping)")
      ->capture_default_str();
  send_cmd->add_flag("--wait", send.wait, "Execute: wait for the command's result");
  CLI::Option* expect_opt = send_cmd->add_option("--expect-version", expected_version,
                                                 "apply only if the aggregate is at this version");
  send_cmd->add_option("--command-id", send.command_id, "deduplication id (default: random)");
  send_cmd->add_option("--correlation-id", send.correlation_id, "correlation id");
  send_cmd->add_option("--timeout", send_timeout, "call deadline")
      ->check(DurationValidator())
      ->capture_default_str();

  // result
  leftfold::cli::ResultOptions result;
  std::string result_timeout = "10s";
  CLI::App* result_cmd =
      app.add_subcommand("result", "the result of a command (GetResult); exit 3 if unknown");
  result_cmd->add_option("TYPE", result.aggregate_type, "aggregate type")->required();
  result_cmd->add_option("COMMAND_ID", result.command_id, "command id")->required();
  result_cmd->add_option("--timeout", result_timeout, "call deadline")
      ->check(DurationValidator())
      ->capture_default_str();

  // tail
  leftfold::cli::TailOptions tail;
  std::string tail_what;
  CLI::App* tail_cmd = app.add_subcommand(
      "tail", "stream results or events, one line each, until Ctrl-C or --count");
  tail_cmd->add_option("WHAT", tail_what, "results | events")
      ->required()
      ->check(CLI::IsMember({"results", "events"}));
  tail_cmd->add_option("--type", tail.aggregate_types, "aggregate type (repeatable)");
  tail_cmd->add_option("--id", tail.aggregate_ids, "aggregate id (repeatable)");
  tail_cmd->add_option("--command-id", tail.command_ids, "command id (repeatable)");
  tail_cmd->add_option("--correlation-id", tail.correlation_id, "correlation id");
  tail_cmd->add_flag("--from-start", tail.from_start,
                     "replay from the first record of every partition, then go on live");
  tail_cmd->add_flag("--to-end", tail.to_end,
                     "with --from-start: stop at the end offsets the replay started with "
                     "(exactly the items that existed then)");
  tail_cmd->add_option("--count", tail.count, "stop after N items")->check(CLI::PositiveNumber);

  // inspect
  leftfold::cli::InspectOptions inspect;
  int64_t at_version = 0;
  std::string inspect_timeout = "30s";
  CLI::App* inspect_cmd = app.add_subcommand(
      "inspect",
      "an aggregate's events (all committed before the call, no more) and its state folded "
      "from them (known types only)");
  inspect_cmd->add_option("TYPE", inspect.aggregate_type, "aggregate type")->required();
  inspect_cmd->add_option("ID", inspect.aggregate_id, "aggregate id")->required();
  CLI::Option* at_opt =
      inspect_cmd->add_option("--at-version", at_version, "fold only up to this version")
          ->check(CLI::NonNegativeNumber);
  inspect_cmd->add_option("--timeout", inspect_timeout, "give up after this long")
      ->check(DurationValidator())
      ->capture_default_str();

  // get
  leftfold::cli::GetOptions get;
  std::string get_timeout = "10s";
  CLI::App* get_cmd = app.add_subcommand(
      "get", "one row of a projector's view (ViewQuery.Get) as JSON; exit 3 if there is none");
  get_cmd->add_option("VIEW", get.view, "view (projector) name, e.g. account_balances")->required();
  get_cmd->add_option("KEY", get.key, "row key")->required();
  AddConsistencyOptions(get_cmd, get.consistency);
  get_cmd->add_option("--timeout", get_timeout, "deadline of the whole call, waits included")
      ->check(DurationValidator())
      ->capture_default_str();

  // scan
  leftfold::cli::ScanOptions scan;
  std::string scan_timeout = "10s";
  CLI::App* scan_cmd = app.add_subcommand(
      "scan", "rows of a projector's view in key order (ViewQuery.Scan), one JSON per line");
  scan_cmd->add_option("VIEW", scan.view, "view (projector) name")->required();
  CLI::Option* prefix_opt = scan_cmd->add_option("--prefix", scan.prefix, "keys starting with P");
  scan_cmd->add_option("--start", scan.start, "first key (inclusive)")->excludes(prefix_opt);
  scan_cmd->add_option("--end", scan.end, "last key (exclusive)")->excludes(prefix_opt);
  scan_cmd->add_option("--limit", scan.limit, "rows per page (server default 100, max 10000)")
      ->check(CLI::PositiveNumber);
  scan_cmd->add_option("--page-token", scan.page_token,
                       "continue a scan where the previous page said");
  scan_cmd->add_flag("--all", scan.all, "every page, not only the first");
  AddConsistencyOptions(scan_cmd, scan.consistency);
  scan_cmd->add_option("--timeout", scan_timeout, "deadline of the whole scan")
      ->check(DurationValidator())
      ->capture_default_str();

  // projector
  leftfold::cli::ProjectorStatusOptions projector_status;
  std::string projector_timeout = "10s";
  CLI::App* projector_cmd = app.add_subcommand(
      "projector",
      "projectors of the server: `status` (per partition checkpoint, end, lag, halted reason), "
      "`rebuild` (rebuild a RocksDB view from offset 0 while it serves, then swap it in)");
  projector_cmd->require_subcommand(1);
  CLI::App* status_cmd = projector_cmd->add_subcommand(
      "status", "ViewQuery.Lag of NAME, or of every projector the CLI knows that runs there");
  status_cmd->add_option("NAME", projector_status.name, "projector name, e.g. account_balances");
  status_cmd->add_option("--timeout", projector_timeout, "call deadline")
      ->check(DurationValidator())
      ->capture_default_str();

  leftfold::cli::ProjectorRebuildOptions projector_rebuild;
  std::string rebuild_timeout = "24h";
  CLI::App* rebuild_cmd = projector_cmd->add_subcommand(
      "rebuild",
      "ViewQuery.Rebuild of NAME: progress bar on stderr (events, events/s, ETA); an interrupted "
      "rebuild resumes where it stopped");
  rebuild_cmd->add_option("NAME", projector_rebuild.name, "projector name, e.g. account_balances")
      ->required();
  rebuild_cmd->add_option("--timeout", rebuild_timeout, "call deadline")
      ->check(DurationValidator())
      ->capture_default_str();

  // topics
  leftfold::cli::TopicsOptions topics;
  if (const char* brokers = std::getenv("LEFTFOLD_BROKERS"); brokers != nullptr) {
    topics.brokers = brokers;
  }
  CLI::App* topics_cmd = app.add_subcommand(
      "topics",
      "Kafka only (--brokers): list/describe/create aggregate topics. The embedded log is "
      "managed by the running server");
  topics_cmd->add_option("ACTION", topics.action, "list | describe | create")
      ->required()
      ->check(CLI::IsMember({"list", "describe", "create"}));
  topics_cmd->add_option("TOPIC", topics.topic, "describe: the topic name");
  topics_cmd->add_option("--brokers", topics.brokers,
                         "Kafka bootstrap servers (default $LEFTFOLD_BROKERS)");
  topics_cmd->add_option("--type", topics.aggregate_types,
                         "list/create: aggregate type (repeatable; default: the known types)");
  topics_cmd
      ->add_option("--create-partitions", topics.partitions,
                   "create: partition count of new topics")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            int n = 0;
            return absl::SimpleAtoi(text, &n) && n >= 1 && n <= kMaxPartitions
                       ? ""
                       : "a partition count is a whole number from 1 to " +
                             std::to_string(kMaxPartitions) + ", got " + text;
          },
          "N"));
  std::string commands_retention, results_retention;
  topics_cmd
      ->add_option("--commands-retention", commands_retention,
                   "create: retention of new commands topics (default 7 days)")
      ->check(DurationValidator());
  topics_cmd
      ->add_option("--results-retention", results_retention,
                   "create: retention of new results topics, the deduplication window (default "
                   "24h)")
      ->check(DurationValidator());

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a "parse error" with code 0; every real one is a usage error (exit 1).
    return app.exit(e) == 0 ? ExitCode::kOk : ExitCode::kUsage;
  }

  if (send_cmd->parsed()) {
    if (expect_opt->count() > 0) send.expected_version = expected_version;
    ParseTimeout(send_timeout, send.timeout);
    return leftfold::cli::RunSend(global, send);
  }
  if (result_cmd->parsed()) {
    ParseTimeout(result_timeout, result.timeout);
    return leftfold::cli::RunResult(global, result);
  }
  if (tail_cmd->parsed()) {
    tail.events = tail_what == "events";
    return leftfold::cli::RunTail(global, tail);
  }
  if (inspect_cmd->parsed()) {
    if (at_opt->count() > 0) inspect.at_version = at_version;
    ParseTimeout(inspect_timeout, inspect.timeout);
    return leftfold::cli::RunInspect(global, inspect);
  }
  if (get_cmd->parsed()) {
    ParseTimeout(get_timeout, get.timeout);
    return leftfold::cli::RunGet(global, get);
  }
  if (scan_cmd->parsed()) {
    ParseTimeout(scan_timeout, scan.timeout);
    return leftfold::cli::RunScan(global, scan);
  }
  if (status_cmd->parsed()) {
    ParseTimeout(projector_timeout, projector_status.timeout);
    return leftfold::cli::RunProjectorStatus(global, projector_status);
  }
  if (rebuild_cmd->parsed()) {
    ParseTimeout(rebuild_timeout, projector_rebuild.timeout);
    return leftfold::cli::RunProjectorRebuild(global, projector_rebuild);
  }
  if (topics_cmd->parsed()) {
    if (!commands_retention.empty()) ParseTimeout(commands_retention, topics.commands_retention);
    if (!results_retention.empty()) ParseTimeout(results_retention, topics.results_retention);
    return leftfold::cli::RunTopics(global, topics);
  }
  return ExitCode::kUsage;
}
