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

namespace leftfold::cli {

// The process exit codes (also in `leftfold --help` and docs/cli.md).
enum ExitCode : int {
  kOk = 0,
  // Usage or bad input: bad JSON, unknown command type, invalid envelope, or any other error
  // not listed below.
  kUsage = 1,
  // The command was not applied: REJECTED, CONFLICT or FAILED.
  kRejected = 2,
  // GetResult found no result; inspect found no events.
  kNotFound = 3,
  // The server could not be reached (UNAVAILABLE, connection refused).
  kUnavailable = 4,
  // No answer before the deadline; a command may still be applied later.
  kDeadline = 5,
};

inline constexpr char kExitCodesHelp[] =
    "Exit codes: 0 ok; 1 usage or bad input (bad JSON, unknown command type, other errors);\n"
    "2 command rejected (REJECTED, CONFLICT, FAILED); 3 not found; 4 server unreachable;\n"
    "5 deadline exceeded (the command may still be applied: see `leftfold result`).";

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
  bool from_start = false;
  // Stop after this many items; 0: until Ctrl-C.
  int64_t count = 0;
};
int RunTail(const GlobalOptions& global, const TailOptions& options);

struct InspectOptions {
  std::string aggregate_type;
  std::string aggregate_id;
  std::optional<int64_t> at_version;
  // The replay is over once no event arrived for this long (see docs/cli.md, "inspect").
  absl::Duration idle = absl::Seconds(1);
  absl::Duration timeout = absl::Seconds(30);
};
int RunInspect(const GlobalOptions& global, const InspectOptions& options);

struct TopicsOptions {
  std::string action;  // list | describe | create
  std::string brokers;
  std::vector<std::string> aggregate_types;  // list, create
  std::string topic;                         // describe
  int32_t partitions = 4;                    // create
};
int RunTopics(const GlobalOptions& global, const TopicsOptions& options);

// --- shared by the subcommands (client.cc) ---

std::shared_ptr<grpc::Channel> Connect(const GlobalOptions& global);

// The exit code of a failed call (see ExitCode).
int ExitCodeFor(grpc::StatusCode code);

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

// The partition count of `topic` (a results or events topic the gateway routes for
// `aggregate_type`), from --partitions or discovered by probing the gateway; see partitions.cc.
absl::StatusOr<int32_t> PartitionCount(const GlobalOptions& global,
                                       const std::shared_ptr<grpc::Channel>& channel,
                                       const std::string& aggregate_type);

// "<prefix><type>.events" / ".results".
std::string TopicName(const GlobalOptions& global, const std::string& aggregate_type, bool events);

}  // namespace leftfold::cli
