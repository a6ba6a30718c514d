// The `leftfold` command-line client: shared options, exit codes, the gRPC connection and the
// entry point of each subcommand (one .cc file each). main.cc only wires CLI11 to these.
//
//   leftfold::cli::GlobalOptions g{.server = "127.0.0.1:50051"};
//   leftfold::cli::SendOptions s{.aggregate_type = "bank.account", .aggregate_id = "acc-1",
//                                .command = "Deposit", .json = R"({"amount": 5})", .wait = true};
//   int exit_code = leftfold::cli::RunSend(g, s);
//
// Every Run* prints to stdout (results, one line per item) and stderr (errors, notes) and
// returns the process exit code. Not thread-safe: one subcommand per process.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "leftfold/v1/envelope.pb.h"

namespace leftfold::cli {

// The process exit codes (also in `leftfold --help` and docs/cli.md).
enum ExitCode : int {
  kOk = 0,
  // Usage or bad input: bad JSON, unknown command type, invalid envelope, or any other error
  // not listed below.
  kUsage = 1,
  // The command was not applied: REJECTED, CONFLICT or FAILED.
  kRejected = 2,
  // GetResult found no result; inspect found no events; get: no such row or view.
  kNotFound = 3,
  // The server could not be reached (UNAVAILABLE, connection refused).
  kUnavailable = 4,
  // No answer before the deadline; a command may still be applied later.
  kDeadline = 5,
};

inline constexpr char kExitCodesHelp[] =
    "Exit codes: 0 ok; 1 usage or bad input (bad JSON, unknown command type, other errors);\n"
    "2 command rejected (REJECTED, CONFLICT, FAILED); 3 not found (result, events, view row,\n"
    "projector); 4 server unreachable; 5 deadline exceeded (the command may still be applied:\n"
    "see `leftfold result`; or the view did not reach the consistency token in time).";

struct GlobalOptions {
  // Default: $LEFTFOLD_SERVER, else 127.0.0.1:50051.
  std::string server = "127.0.0.1:50051";
  // One JSON document per line instead of human-readable text.
  bool json = false;
  // Prepended to every topic name, as the server's --topic-prefix. Default: $LEFTFOLD_TOPIC_PREFIX.
  std::string topic_prefix;
  // Partition count of the aggregate topics; 0: discovered from the gateway.
  int32_t partitions = 0;
};

struct SendOptions {
  std::string aggregate_type;
  std::string aggregate_id;
  std::string command;  // "bank.v1.Deposit" or "Deposit"
  std::string json = "{}";
  bool wait = false;
  std::optional<int64_t> expected_version;
  std::string command_id;  // empty: generated here, so a timed-out Execute can name it
  std::string correlation_id;
  absl::Duration timeout = absl::Seconds(10);
};
int RunSend(const GlobalOptions& global, const SendOptions& options);

struct ResultOptions {
  std::string aggregate_type;
  std::string command_id;
  absl::Duration timeout = absl::Seconds(10);
};
int RunResult(const GlobalOptions& global, const ResultOptions& options);

struct TailOptions {
  bool events = false;  // else results
  std::vector<std::string> aggregate_types;
  std::vector<std::string> aggregate_ids;
  std::vector<std::string> command_ids;
  std::string correlation_id;
  // Replay every partition from offset 0 (the gateway's from_start), then go on live.
  bool from_start = false;
  // With from_start: stop once the replay reached the end offsets the partitions had when it
  // started (the gateway's stop_at_end): exactly the items that existed then.
  bool to_end = false;
  // Stop after this many items; 0: until Ctrl-C.
  int64_t count = 0;
};
int RunTail(const GlobalOptions& global, const TailOptions& options);

struct InspectOptions {
  std::string aggregate_type;
  std::string aggregate_id;
  std::optional<int64_t> at_version;
  absl::Duration timeout = absl::Seconds(30);
};
int RunInspect(const GlobalOptions& global, const InspectOptions& options);

// What a query waits for before it reads (at most one of the two).
struct ConsistencyOptions {
  // Wait for this command's events: its result (GetResult) gives the token.
  std::string after_command_id;
  // The aggregate type of after_command_id; empty: every type the CLI knows is asked.
  std::string aggregate_type;
  // A token as `send` prints it (see ParseToken).
  std::string token;
};

// `get VIEW KEY`: ViewQuery.Get, optionally after a consistency token.
struct GetOptions {
  std::string view;
  std::string key;
  ConsistencyOptions consistency;
  // The whole call: finding the command's result and the view's wait for the token.
  absl::Duration timeout = absl::Seconds(10);
};
int RunGet(const GlobalOptions& global, const GetOptions& options);

// `scan VIEW`: ViewQuery.Scan, one page or (--all) every page.
struct ScanOptions {
  std::string view;
  std::string prefix;
  std::string start;
  std::string end;
  // Rows per page (the request's limit); 0: the server's default (100).
  uint32_t limit = 0;
  // Base64, as printed after a page that has more rows.
  std::string page_token;
  bool all = false;
  ConsistencyOptions consistency;
  absl::Duration timeout = absl::Seconds(10);
};
int RunScan(const GlobalOptions& global, const ScanOptions& options);

// `projector status [NAME]`: ViewQuery.Lag of one projector or of every known one.
struct ProjectorStatusOptions {
  std::string name;  // empty: KnownProjectors()
  absl::Duration timeout = absl::Seconds(10);
};
int RunProjectorStatus(const GlobalOptions& global, const ProjectorStatusOptions& options);

// `projector rebuild NAME`: ViewQuery.Rebuild; a progress bar on stderr (a TTY redraws one line,
// otherwise a line per second), the final progress on stdout (JSON with --json).
struct ProjectorRebuildOptions {
  std::string name;
  absl::Duration timeout = absl::Hours(24);
};
int RunProjectorRebuild(const GlobalOptions& global, const ProjectorRebuildOptions& options);

// The projectors `projector status` asks for when no name is given (the ViewQuery API has no
// "list projectors" call).
std::vector<std::string> KnownProjectors();

// A consistency token in any form `leftfold send` prints it:
//   "topic:partition:offset,..."                      (also the gateway's metadata format)
//   "topic/partition@offset,..."                       (send --wait, human output)
//   a whole `send --wait` line: "ACCEPTED ... positions bank.account.events/1@0 command ..."
//   a `send --wait --json` CommandResult, or a JSON array of Position objects.
// INVALID_ARGUMENT naming the bad part; an empty token is an error too.
absl::StatusOr<std::vector<v1::Position>> ParseToken(const std::string& text);

struct TopicsOptions {
  std::string action;  // list | describe | create
  std::string brokers;
  std::vector<std::string> aggregate_types;  // list, create
  std::string topic;                         // describe
  int32_t partitions = 4;                    // create
  // create: retention of new commands / results topics; zero: leftfold's defaults (7 days,
  // 24 hours; the results retention is the processors' deduplication window).
  absl::Duration commands_retention = absl::ZeroDuration();
  absl::Duration results_retention = absl::ZeroDuration();
};
int RunTopics(const GlobalOptions& global, const TopicsOptions& options);

// --- shared by the subcommands (client.cc) ---

std::shared_ptr<grpc::Channel> Connect(const GlobalOptions& global);

// The exit code of a failed call (see ExitCode). absl::StatusCode values are the same numbers.
int ExitCodeFor(grpc::StatusCode code);

// A call deadline `d` from now.
std::chrono::system_clock::time_point DeadlineAfter(absl::Duration d);

// "UNAVAILABLE" etc.
std::string CodeName(int code);

// Prints a failed call: "error: CODE: message" on stderr, or a JSON error object on stdout with
// --json. Returns ExitCodeFor(status).
int ReportError(const GlobalOptions& global, const grpc::Status& status,
                const std::string& command_id = "");
// The same for a local error (bad input) with its own exit code.
int ReportLocalError(const GlobalOptions& global, const absl::Status& status, int exit_code);

// SIGINT/SIGTERM cancel the registered call (a stream ends cleanly) instead of killing the
// process; with no call registered they exit with 130. Install once, before gRPC starts threads.
void InstallInterruptHandler();
// Registers `ctx` until the returned guard dies.
class InterruptScope {
 public:
  explicit InterruptScope(grpc::ClientContext* ctx);
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
  // True when the call was cancelled by a signal.
  static bool interrupted();
};

// The partition count of `aggregate_type`'s topics, from --partitions or else from the
// `leftfold-partitions` initial metadata of a (cancelled) live event subscription.
absl::StatusOr<int32_t> PartitionCount(const GlobalOptions& global,
                                       const std::shared_ptr<grpc::Channel>& channel,
                                       const std::string& aggregate_type);

// "<prefix><type>.events" / ".results".
std::string TopicName(const GlobalOptions& global, const std::string& aggregate_type, bool events);

}  // namespace leftfold::cli
