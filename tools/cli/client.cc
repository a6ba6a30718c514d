// What the subcommands share: the channel, exit codes and error printing, Ctrl-C handling, and
// the partition count discovery.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <iterator>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "leftfold/v1/gateway_service.grpc.pb.h"
#include "topology/topics.h"

namespace leftfold::cli {
namespace {

std::mutex interrupt_mu;
grpc::ClientContext* interrupt_ctx = nullptr;  // guarded by interrupt_mu
bool interrupt_seen = false;                   // guarded by interrupt_mu

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrCat("\\u00", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace

std::shared_ptr<grpc::Channel> Connect(const GlobalOptions& global) {
  return grpc::CreateChannel(global.server, grpc::InsecureChannelCredentials());
}

int ExitCodeFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return kOk;
    case grpc::StatusCode::NOT_FOUND:
      return kNotFound;
    case grpc::StatusCode::UNAVAILABLE:
      return kUnavailable;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kDeadline;
    default:
      return kUsage;
  }
}

std::string CodeName(int code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) return kNames[code];
  return absl::StrCat("CODE_", code);
}

int ReportError(const GlobalOptions& global, const grpc::Status& status,
                const std::string& command_id) {
  int exit_code = ExitCodeFor(status.error_code());
  std::string message = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    message = absl::StrCat("server ", global.server, " unavailable: ", message);
  }
  if (global.json) {
    std::cout << "{\"error\":{\"code\":\"" << CodeName(status.error_code()) << "\",\"message\":\""
              << JsonEscape(message) << "\"";
    if (!command_id.empty()) std::cout << ",\"commandId\":\"" << JsonEscape(command_id) << "\"";
    std::cout << ",\"exitCode\":" << exit_code << "}}" << std::endl;
  } else {
    std::cerr << "error: " << CodeName(status.error_code()) << ": " << message << std::endl;
    if (!command_id.empty()) {
      std::cerr << "command id: " << command_id
                << " (it may still be applied; ask `leftfold result TYPE " << command_id << "`)"
                << std::endl;
    }
  }
  return exit_code;
}

int ReportLocalError(const GlobalOptions& global, const absl::Status& status, int exit_code) {
  if (global.json) {
    std::cout << "{\"error\":{\"code\":\"" << CodeName(static_cast<int>(status.code()))
              << "\",\"message\":\"" << JsonEscape(std::string(status.message()))
              << "\",\"exitCode\":" << exit_code << "}}" << std::endl;
  } else {
    std::cerr << "error: " << status.message() << std::endl;
  }
  return exit_code;
}

void InstallInterruptHandler() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  // Blocked here, before any gRPC thread exists, so every thread inherits the mask and only the
  // waiter below receives them: cancelling a call from a signal handler is not safe.
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      std::lock_guard<std::mutex> lock(interrupt_mu);
      if (interrupt_ctx == nullptr || interrupt_seen) _exit(128 + sig);
      interrupt_seen = true;
      interrupt_ctx->TryCancel();
    }
  }).detach();
}

InterruptScope::InterruptScope(grpc::ClientContext* ctx) {
  std::lock_guard<std::mutex> lock(interrupt_mu);
  interrupt_ctx = ctx;
}

InterruptScope::~InterruptScope() {
  std::lock_guard<std::mutex> lock(interrupt_mu);
  interrupt_ctx = nullptr;
}

bool InterruptScope::interrupted() {
  std::lock_guard<std::mutex> lock(interrupt_mu);
  return interrupt_seen;
}

std::string TopicName(const GlobalOptions& global, const std::string& aggregate_type, bool events) {
  internal::AggregateTopics topics = internal::TopicsFor(global.topic_prefix, aggregate_type);
  return events ? topics.events : topics.results;
}

namespace {

// The gateway's API has no call that lists partitions. But a replay whose `from` names a
// partition that does not exist fails with INVALID_ARGUMENT "position <topic>:<p> names no
// partition", naming the FIRST such position in request order. So one replay from partitions
// 0..kMaxPartitions-1 (in order) fails at once and names exactly the partition count.
constexpr int32_t kMaxPartitions = 10000;

absl::StatusOr<int32_t> ProbePartitionCount(const std::shared_ptr<grpc::Channel>& channel,
                                            const std::string& type, const std::string& topic) {
  auto stub = v1::CommandGateway::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::EventFilter filter;
  filter.add_aggregate_types(type);
  // Matches nothing, in case the replay should start after all.
  filter.add_aggregate_ids("\x01leftfold-cli-partition-probe");
  for (int32_t p = 0; p < kMaxPartitions; ++p) {
    v1::Position* from = filter.add_from();
    from->set_topic(topic);
    from->set_partition(p);
    from->set_offset(0);
  }
  auto reader = stub->SubscribeEvents(&ctx, filter);
  v1::EventEnvelope ignored;
  while (reader->Read(&ignored)) {
  }
  // Read to the end (no cancel): a cancel could mask the status the server already sent.
  grpc::Status s = reader->Finish();
  const std::string& message = s.error_message();
  const std::string marker = " names no partition";
  size_t at = message.find(marker);
  size_t colon = at == std::string::npos ? std::string::npos : message.rfind(':', at);
  int32_t count = 0;
  if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT && colon != std::string::npos &&
      absl::SimpleAtoi(message.substr(colon + 1, at - colon - 1), &count) && count > 0) {
    return count;
  }
  std::string hint;
  if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
    hint = " (is --topic-prefix right? or pass --partitions)";
  } else if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    hint =
        absl::StrCat(" (no answer; more than ", kMaxPartitions, " partitions? pass --partitions)");
  }
  return absl::Status(
      static_cast<absl::StatusCode>(s.error_code()),
      absl::StrCat("discovering the partitions of ", topic, ": ", s.error_message(), hint));
}

}  // namespace

absl::StatusOr<int32_t> PartitionCount(const GlobalOptions& global,
                                       const std::shared_ptr<grpc::Channel>& channel,
                                       const std::string& aggregate_type) {
  if (global.partitions > 0) return global.partitions;
  // The four topics of a type are co-partitioned, so the events topic answers for all.
  return ProbePartitionCount(channel, aggregate_type,
                             TopicName(global, aggregate_type, /*events=*/true));
}

}  // namespace leftfold::cli
