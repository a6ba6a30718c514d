#include "gateway/execute_stream.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_grpc.h"

namespace leftfold::internal::gateway {

using leftfold::v1::CommandEnvelope;
using leftfold::v1::CommandResult;
using leftfold::v1::ExecuteStreamResponse;

namespace {

// A response that carries a per-command status instead of a result.
ExecuteStreamResponse StatusResponse(const std::string& command_id, const grpc::Status& status) {
  ExecuteStreamResponse response;
  response.set_command_id(command_id);
  response.mutable_status()->set_code(static_cast<int32_t>(status.error_code()));
  response.mutable_status()->set_message(status.error_message());
  return response;
}

// The waiter of one command of a stream; answering it queues the command's response.
struct StreamWaiter final : ExecWaiter {
  std::shared_ptr<CommandStream> stream;

 protected:
  void Answer(const grpc::Status& status, const CommandResult* result) override {
    stream->Complete(this, status, result);
  }
};

}  // namespace

CommandStream::CommandStream(Gateway::Impl* impl, grpc::CallbackServerContext* ctx,
                             StreamReactor* reactor)
    : impl_(impl),
      ctx_(ctx),
      reactor_(reactor),
      max_pending_(impl->options().max_stream_pending),
      timeout_(impl->options().max_execute_wait),
      call_deadline_(CallDeadline(*ctx)) {}

void CommandStream::Begin() {
  absl::MutexLock lock(&mu_);
  if (finished_) return;  // the gateway began shutting down meanwhile
  if (!impl_->accepting()) {
    FinishLocked(NotAccepting());
    return;
  }
  const auto& metadata = ctx_->client_metadata();
  if (auto it = metadata.find(kCommandTimeoutMetadata); it != metadata.end()) {
    int64_t ms = 0;
    if (!absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &ms) ||
        ms <= 0) {
      FinishLocked(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       absl::StrCat(kCommandTimeoutMetadata,
                                    ": must be a positive number of milliseconds, got '",
                                    absl::string_view(it->second.data(), it->second.size()), "'")));
      return;
    }
    timeout_ = std::min(timeout_, absl::Milliseconds(ms));
  }
  MaybeReadLocked();
}

void CommandStream::ReadDone(bool ok) {
  CommandEnvelope c;
  {
    absl::MutexLock lock(&mu_);
    if (finished_ || !ok) {
      reading_ = false;
      if (!finished_) {
        half_closed_ = true;
        MaybeFinishLocked();
      }
      return;
    }
    c = std::move(request_);
    request_.Clear();
    ++pending_;
  }
  // The next read starts only once this command is handed to the producer (reading_ stays true
  // meanwhile): a stream's commands reach the log in the order they were sent, so a client may
  // stream dependent commands (open, then deposit) without waiting for each answer.
  Handle(std::move(c));
  absl::MutexLock lock(&mu_);
  reading_ = false;
  MaybeReadLocked();
}

void CommandStream::Handle(CommandEnvelope c) {
  if (!impl_->accepting()) {
    ReplyStatus(c.command_id(), grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                             "gateway is shutting down; command not sent"));
    return;
  }
  if (absl::Status s = impl_->Validate(c); !s.ok()) {
    ReplyStatus(c.command_id(), ToGrpcStatus(s));
    return;
  }
  if (!impl_->Admit()) {
    ReplyStatus(c.command_id(), Overloaded(impl_->options().max_inflight));
    return;
  }
  c = Normalize(c);
  auto waiter = std::make_shared<StreamWaiter>();
  waiter->impl = impl_;
  waiter->command_id = c.command_id();
  waiter->key = CacheKey(c.aggregate_type(), c.command_id());
  waiter->stream = shared_from_this();
  {
    absl::MutexLock lock(&mu_);
    if (finished_) {
      // The call is gone (cancelled meanwhile): nobody to answer, send nothing.
      impl_->ReleaseInflight();
      return;
    }
    waiting_.emplace(waiter.get(), waiter);
  }
  impl_->Dispatch(c, waiter, CommandDeadline(absl::Now(), timeout_, call_deadline_));
}

void CommandStream::Complete(ExecWaiter* waiter, const grpc::Status& status,
                             const CommandResult* result) {
  ExecuteStreamResponse response;
  if (result != nullptr) {
    response.set_command_id(waiter->command_id);
    *response.mutable_result() = *result;
  } else {
    response = StatusResponse(waiter->command_id, status);
  }
  absl::MutexLock lock(&mu_);
  // The caller holds the waiter, so dropping the stream's reference here cannot destroy it.
  waiting_.erase(waiter);
  ReplyLocked(std::move(response));
}

void CommandStream::ReplyStatus(const std::string& command_id, const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  ReplyLocked(StatusResponse(command_id, status));
}

void CommandStream::ReplyLocked(ExecuteStreamResponse response) {
  if (finished_) return;
  ready_.push_back(std::move(response));
  if (!writing_) WriteNextLocked();
}

void CommandStream::WriteDone(bool ok) {
  bool abandon = false;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (finished_) return;
    if (!ok) {
      // The client is gone (gRPC cancels the call too); its commands need no answer any more.
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "stream write failed"));
      abandon = true;
    } else {
      --pending_;
      if (!ready_.empty()) WriteNextLocked();
      MaybeReadLocked();
      MaybeFinishLocked();
    }
  }
  if (abandon) Abandon();
}

void CommandStream::Cancel() {
  {
    absl::MutexLock lock(&mu_);
    if (!finished_) FinishLocked(grpc::Status::CANCELLED);
  }
  Abandon();
}

void CommandStream::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
  MaybeFinishLocked();
}

void CommandStream::Abandon() {
  absl::flat_hash_map<ExecWaiter*, std::shared_ptr<ExecWaiter>> waiting;
  {
    absl::MutexLock lock(&mu_);
    waiting.swap(waiting_);
  }
  for (auto& [raw, waiter] : waiting) {
    if (!waiter->Claim()) continue;  // answering right now; its response is dropped
    impl_->Forget(waiter);
    waiter->Finish(grpc::Status::CANCELLED, nullptr);
  }
}

// StartRead, StartWrite and Finish are called under mu_ so that Finish (and the OnDone that
// deletes the reactor) can never interleave with them; gRPC runs the resulting reactions on its
// own threads, never inline (the reactor is not inlineable).
void CommandStream::MaybeReadLocked() {
  if (reading_ || half_closed_ || shutting_down_ || finished_ || pending_ >= max_pending_) return;
  reading_ = true;
  reactor_->StartRead(&request_);
}

void CommandStream::WriteNextLocked() {
  current_ = std::move(ready_.front());
  ready_.pop_front();
  writing_ = true;
  reactor_->StartWrite(&current_);
}

void CommandStream::MaybeFinishLocked() {
  if (finished_ || pending_ > 0 || writing_ || !ready_.empty()) return;
  if (half_closed_) {
    FinishLocked(grpc::Status::OK);
  } else if (shutting_down_) {
    FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "gateway is shutting down; every command read was answered"));
  }
}

void CommandStream::FinishLocked(const grpc::Status& status) {
  finished_ = true;
  ready_.clear();
  reactor_->Finish(status);
}

}  // namespace leftfold::internal::gateway
