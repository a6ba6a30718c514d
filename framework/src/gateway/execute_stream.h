// One ExecuteStream call (proto/leftfold/v1/gateway_service.proto, "ExecuteStream contract"):
// many commands over one bidirectional stream, each handled by Gateway::Impl's Execute path
// (Validate, Admit, Dispatch), each answered by one ExecuteStreamResponse in completion order.
//
//   // In Gateway::Impl::ExecuteStream:
//   auto* reactor = new ExecuteStreamReactor(impl, ctx);
//   reactor->stream()->Begin();   // reads the first command, or ends the call at once
//   return reactor;
//
// Bytes: the method is raw (grpc::ByteBuffer both ways). A command is parsed to check and route
// it, but produced as the bytes it arrived in (plus the command id and submission time when the
// client left them out, appended as fields: protobuf reads the last occurrence); a result read
// from the log is answered as those bytes behind the command id, so the common path never
// builds or serializes a response message. The wire format is ExecuteStreamResponse's.
//
// Order: one command is read and handed to the producer before the next read starts, so the
// commands of a stream reach the log in the order sent; responses go out as results come.
//
// Flow control: at most `max_stream_pending` commands read and not yet answered (their response
// written); at that many no read is outstanding, so HTTP/2 flow control holds the client back.
// One write in flight at a time; ready responses queue behind it (bounded by the same cap).
//
// Lifetime: ExecuteStreamReactor is created by the handler and deleted by gRPC's OnDone (after
// Finish). The CommandStream it drives is shared with the stream's waiters and with the
// gateway's list of open streams; it calls Finish exactly once and never touches the reactor
// afterwards, so a waiter answering late is harmless. Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/gateway_service.h"
#include "leftfold/v1/gateway_service.pb.h"

namespace leftfold::internal::gateway {

// Request metadata: the per-command timeout of an ExecuteStream, in milliseconds.
inline constexpr char kCommandTimeoutMetadata[] = "leftfold-command-timeout-ms";

using StreamReactor = grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;

// The serialized ExecuteStreamResponse{command_id, result} for a result's serialized bytes.
grpc::ByteBuffer ResultResponseBytes(const std::string& command_id,
                                     const std::string& serialized_result);
// Appends to `serialized` (the bytes `c` was parsed from) the fields NormalizeInPlace then set
// in `c`: its command id when `id_added`, its submission time when `time_added`.
void AppendNormalized(const leftfold::v1::CommandEnvelope& c, bool id_added, bool time_added,
                      std::string& serialized);

class CommandStream : public std::enable_shared_from_this<CommandStream> {
 public:
  CommandStream(Gateway::Impl* impl, grpc::CallbackServerContext* ctx, StreamReactor* reactor);

  // From the handler, after the stream is registered with the gateway: checks the call's
  // metadata and starts reading (or ends the call).
  void Begin();
  // The reactor's reactions.
  void ReadDone(bool ok);
  void WriteDone(bool ok);
  void Cancel();
  // The gateway is shutting down: read no more, answer what was read, then end UNAVAILABLE.
  void Shutdown();
  // A waiter of this stream answers its command.
  // May move from `*result` (see ExecWaiter::Finish); answers with `serialized` when given.
  void Complete(ExecWaiter* waiter, const grpc::Status& status, leftfold::v1::CommandResult* result,
                const std::string* serialized);

 private:
  // `raw`: the command as read.
  void Handle(std::string raw);
  // Queues a response, taking its contents (dropped once the call finished); `pending_` goes
  // down only when it has been written.
  void ReplyLocked(grpc::ByteBuffer& response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReplyStatus(const std::string& command_id, const grpc::Status& status)
      ABSL_LOCKS_EXCLUDED(mu_);
  void MaybeReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends every unanswered command's wait (the call is gone): frees their in-flight slots.
  void Abandon() ABSL_LOCKS_EXCLUDED(mu_);

  Gateway::Impl* const impl_;
  grpc::CallbackServerContext* const ctx_;  // valid until Finish
  StreamReactor* const reactor_;            // valid until Finish
  const size_t max_pending_;
  absl::Duration timeout_;    // per command; set by Begin
  absl::Time call_deadline_;  // InfiniteFuture when the call has none

  absl::Mutex mu_;
  // The read buffer; only touched by the one outstanding read and by ReadDone.
  grpc::ByteBuffer request_;
  // Commands read and not yet answered on the wire (their response not yet written).
  size_t pending_ ABSL_GUARDED_BY(mu_) = 0;
  // A read is outstanding, or the command it read is being handled.
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // Dispatched commands waiting for their result (each holds this stream: the cycle ends when
  // the waiter answers or the stream abandons it).
  absl::flat_hash_map<ExecWaiter*, std::shared_ptr<ExecWaiter>> waiting_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::ByteBuffer> ready_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // The response being written; untouched until OnWriteDone.
  grpc::ByteBuffer current_ ABSL_GUARDED_BY(mu_);
};

// The reactor gRPC drives; forwards to its CommandStream. Deletes itself in OnDone.
class ExecuteStreamReactor final : public StreamReactor {
 public:
  ExecuteStreamReactor(Gateway::Impl* impl, grpc::CallbackServerContext* ctx)
      : stream_(std::make_shared<CommandStream>(impl, ctx, this)) {}
  const std::shared_ptr<CommandStream>& stream() const { return stream_; }

  void OnReadDone(bool ok) override { stream_->ReadDone(ok); }
  void OnWriteDone(bool ok) override { stream_->WriteDone(ok); }
  void OnCancel() override { stream_->Cancel(); }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<CommandStream> stream_;
};

}  // namespace leftfold::internal::gateway
