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
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
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

std::chrono::system_clock::time_point DeadlineAfter(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
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

absl::StatusOr<int32_t> PartitionCount(const GlobalOptions& global,
                                       const std::shared_ptr<grpc::Channel>& channel,
                                       const std::string& aggregate_type) {
  if (global.partitions > 0) return global.partitions;
  // The four topics of a type are co-partitioned, so the events topic answers for all. A live
  // subscription's initial metadata carries "topic:count,..."; it is cancelled right after.
  const std::string topic = TopicName(global, aggregate_type, /*events=*/true);
  auto stub = v1::CommandGateway::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::EventFilter filter;
  filter.add_aggregate_types(aggregate_type);
  auto reader = stub->SubscribeEvents(&ctx, filter);
  reader->WaitForInitialMetadata();
  std::string counts;
  const auto& md = ctx.GetServerInitialMetadata();
  if (auto it = md.find("leftfold-partitions"); it != md.end()) {
    counts.assign(it->second.data(), it->second.size());
  }
  ctx.TryCancel();
  v1::EventEnvelope ignored;
  while (reader->Read(&ignored)) {
  }
  grpc::Status s = reader->Finish();
  if (counts.empty()) {
    if (s.ok() || s.error_code() == grpc::StatusCode::CANCELLED) {
      return absl::FailedPreconditionError(
          absl::StrCat("the gateway at ", global.server,
                       " does not tell partition counts (an older gateway?): pass --partitions"));
    }
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("asking the partitions of ", topic, ": ", s.error_message()));
  }
  for (absl::string_view entry : absl::StrSplit(counts, ',')) {
    size_t colon = entry.rfind(':');
    int32_t n = 0;
    if (colon != absl::string_view::npos && entry.substr(0, colon) == topic &&
        absl::SimpleAtoi(entry.substr(colon + 1), &n) && n > 0) {
      return n;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("the gateway reported partitions '", counts,
                                                 "', none for ", topic,
                                                 " (is --topic-prefix right?)"));
}

}  // namespace leftfold::cli
