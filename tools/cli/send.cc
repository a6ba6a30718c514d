// `leftfold send` (Submit / Execute) and `leftfold result` (GetResult).
#include <iostream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli.h"
#include "grpcpp/client_context.h"
#include "leftfold/v1/gateway_service.grpc.pb.h"
#include "messages.h"
#include "output.h"

namespace leftfold::cli {
namespace {

constexpr char kResultMetadata[] = "leftfold-result-bin";
constexpr char kCommandIdMetadata[] = "leftfold-command-id";

std::string NewCommandId() {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
  uint64_t hi = rng();
  uint64_t lo = rng();
  // A random (version 4) UUID, the gateway's own format.
  hi = (hi & ~0xf000ULL) | 0x4000ULL;
  lo = (lo & ~(0xcULL << 60)) | (0x8ULL << 60);
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff,
                         lo >> 48, lo & 0xffffffffffffULL);
}

std::string Metadata(const grpc::ClientContext& ctx, const char* key) {
  const auto& md = ctx.GetServerTrailingMetadata();
  auto it = md.find(key);
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

int ExitCodeForResult(const v1::CommandResult& result) {
  return result.outcome() == v1::CommandResult::ACCEPTED ? kOk : kRejected;
}

}  // namespace

int RunSend(const GlobalOptions& global, const SendOptions& options) {
  absl::StatusOr<const google::protobuf::Descriptor*> type = ResolveMessageType(options.command);
  if (!type.ok()) return ReportLocalError(global, type.status(), kUsage);
  absl::StatusOr<google::protobuf::Any> payload = JsonToAny(**type, options.json);
  if (!payload.ok()) return ReportLocalError(global, payload.status(), kUsage);

  v1::CommandEnvelope envelope;
  envelope.set_command_id(options.command_id.empty() ? NewCommandId() : options.command_id);
  envelope.set_aggregate_type(options.aggregate_type);
  envelope.set_aggregate_id(options.aggregate_id);
  if (options.expected_version.has_value()) {
    envelope.set_expected_version(*options.expected_version);
  }
  *envelope.mutable_payload() = *std::move(payload);
  envelope.set_correlation_id(options.correlation_id);
  envelope.mutable_metadata()->insert({"client", "leftfold-cli"});

  auto stub = v1::CommandGateway::NewStub(Connect(global));
  grpc::ClientContext ctx;
  ctx.set_deadline(DeadlineAfter(options.timeout));
  InterruptScope interrupt(&ctx);

  if (!options.wait) {
    v1::SubmitAck ack;
    grpc::Status s = stub->Submit(&ctx, envelope, &ack);
    if (!s.ok()) {
      return ReportError(
          global, s,
          s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? envelope.command_id() : "");
    }
    if (global.json) {
      std::cout << ToJson(ack) << std::endl;
    } else {
      std::cout << "submitted " << ack.command_id() << " at " << FormatPosition(ack.position())
                << std::endl;
    }
    return kOk;
  }

  v1::CommandResult result;
  grpc::Status s = stub->Execute(&ctx, envelope, &result);
  if (s.ok()) {
    PrintResult(global, result);
    return ExitCodeForResult(result);
  }
  // A rejection's gRPC code is the result's own code (NOT_FOUND, INVALID_ARGUMENT, ...): only the
  // attached result tells a rejection from a transport or validation error.
  std::string result_bytes = Metadata(ctx, kResultMetadata);
  if (!result_bytes.empty() && result.ParseFromString(result_bytes)) {
    PrintResult(global, result);
    return result.outcome() == v1::CommandResult::ACCEPTED ? kOk : kRejected;
  }
  std::string command_id = Metadata(ctx, kCommandIdMetadata);
  if (command_id.empty() && s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    command_id = envelope.command_id();  // our own deadline fired before the gateway's answer
  }
  return ReportError(global, s, command_id);
}

int RunResult(const GlobalOptions& global, const ResultOptions& options) {
  auto stub = v1::CommandGateway::NewStub(Connect(global));
  grpc::ClientContext ctx;
  ctx.set_deadline(DeadlineAfter(options.timeout));
  InterruptScope interrupt(&ctx);
  v1::GetResultRequest request;
  request.set_command_id(options.command_id);
  request.set_aggregate_type(options.aggregate_type);
  v1::CommandResult result;
  grpc::Status s = stub->GetResult(&ctx, request, &result);
  if (!s.ok()) return ReportError(global, s);
  PrintResult(global, result);
  return ExitCodeForResult(result);
}

}  // namespace leftfold::cli
