// Process managers (sagas): long-running workflows across aggregates, driven by events and
// command results, acting only by sending commands.
//
//   leftfold::ProcessDefinition TransferProcess() {
//     return leftfold::ProcessDefinition("bank.transfer-process")
//         .OnEvent<bank::v1::TransferRequested>(
//             "bank.transfer",
//             [](const leftfold::v1::EventEnvelope& envelope, const bank::v1::TransferRequested& e,
//                leftfold::ProcessContext& ctx) -> absl::Status {
//               bank::v1::Withdraw withdraw;
//               withdraw.set_amount(e.amount());
//               // The id is DERIVED from the transfer and the step: never random (see below).
//               return ctx.Send("bank.account", leftfold::AggregateId(e.from()), withdraw,
//                               leftfold::CommandId(envelope.aggregate_id() + "/debit"));
//             })
//         .OnResults("bank.account",
//                    [](const leftfold::v1::CommandResult& result, leftfold::ProcessContext& ctx) {
//                      ...  // e.g. on "<transfer>/debit" ACCEPTED, send the credit
//                      return absl::OkStatus();
//                    });
//   }
//   auto pm = leftfold::ProcessManager::Create(transport, TransferProcess());
//   std::thread t([&] { absl::Status s = (*pm)->Run(); ... });
//   (*pm)->Stop(); t.join();
//
// The runtime is a consumer group over the `T.events` / `T.results` topics named by the
// definition. Per batch of records it calls the matching handlers, then produces every command
// they queued with ProcessContext::Send to its `T.commands` topic (keyed by aggregate id, the
// idempotent producer), waits for delivery, and only then commits the consumer offsets.
//
// ============================================================================================
//  THE ONE RULE: EVERY COMMAND ID A HANDLER SENDS MUST BE DETERMINISTIC.
//
//  Delivery is AT LEAST ONCE: a crash (or a handler error, or a rebalance) after the commands of
//  a batch were produced but before its offsets were committed makes the next owner handle the
//  same records again and send the same commands again. That is harmless ONLY because the
//  aggregate processor applies a command at most once per command id and answers a repeated id
//  with the original result. So derive the id from what identifies the step in the workflow,
//  e.g. "<transfer id>/debit", never from a clock, a counter or a random generator: the same
//  input record must always produce the same (aggregate, command id) pairs. Within the
//  processor's dedup window (ProcessorOptions::dedup_window) this makes the workflow
//  exactly-once in effect.
// ============================================================================================
//
// Handlers must be pure functions of the record (no state of their own: a process instance's
// state lives in an aggregate of its own, whose events drive the next step). A handler's non-OK
// status (or exception) is treated as a bug or an outage: nothing of the batch is produced or
// committed, and Run() returns that status; a restarted process manager handles the batch again.
// Records that cannot be parsed, and events of types no handler asked for, are skipped.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "leftfold/transport.h"
#include "leftfold/types.h"
#include "leftfold/v1/envelope.pb.h"

namespace leftfold {

// What a handler acts through. Lives for one handler call; not thread-safe (one call).
class ProcessContext {
 public:
  ProcessContext(const ProcessContext&) = delete;
  ProcessContext& operator=(const ProcessContext&) = delete;

  // Queues `command` (a generated protobuf message, copied) for the aggregate `aggregate_id` of
  // type `aggregate_type`; it is produced after the handler returns OK, before the offsets of
  // the record are committed. `command_id` MUST be deterministic (see the header comment).
  // `correlation_id`: default, the correlation id of the record being handled.
  // INVALID_ARGUMENT for an empty type, aggregate id or command id.
  absl::Status Send(const std::string& aggregate_type, const AggregateId& aggregate_id,
                    const google::protobuf::Message& command, const CommandId& command_id,
                    std::string correlation_id = "");

  // Where the record being handled is ("topic/partition@offset"), for logs.
  const std::string& source() const { return source_; }

  // For the runtime (and tests of handlers): a context for one record, and what was sent.
  ProcessContext(std::string process_name, std::string source, std::string correlation_id)
      : process_name_(std::move(process_name)),
        source_(std::move(source)),
        correlation_id_(std::move(correlation_id)) {}
  const std::vector<v1::CommandEnvelope>& sent() const { return sent_; }
  std::vector<v1::CommandEnvelope> TakeSent() { return std::move(sent_); }

 private:
  std::string process_name_;
  std::string source_;
  std::string correlation_id_;
  std::vector<v1::CommandEnvelope> sent_;
};

namespace internal {

// One registered handler; `event_type` empty for a results handler.
struct ProcessHandler {
  enum class Kind { kEvents, kResults };
  Kind kind = Kind::kEvents;
  std::string aggregate_type;
  // Full message name of the event payload (kEvents only).
  std::string event_type;
  // `record` is a v1::EventEnvelope (kEvents) or a v1::CommandResult (kResults).
  std::function<absl::Status(const google::protobuf::Message& record, ProcessContext& ctx)> fn;
};

}  // namespace internal

// A process manager's declaration: its name (the default consumer group) and handlers.
// A value: copy it, return it from a function. Not thread-safe while being built; handlers must
// be callable concurrently as const (the runtime calls them from its one thread).
class ProcessDefinition {
 public:
  // `name` names the consumer group ("<prefix><name>.process"), e.g. "bank.transfer-process".
  explicit ProcessDefinition(std::string name) : name_(std::move(name)) {}

  // Calls `f` for every event of type `Event` on `<aggregate_type>.events`:
  //   absl::Status(const v1::EventEnvelope& envelope, const Event& event, ProcessContext& ctx)
  template <typename Event, typename F>
  ProcessDefinition& OnEvent(std::string aggregate_type, F f) {
    static_assert(std::is_base_of_v<google::protobuf::Message, Event>,
                  "OnEvent<Event>: Event must be a generated protobuf message type");
    static_assert(std::is_invocable_r_v<absl::Status, const F&, const v1::EventEnvelope&,
                                        const Event&, ProcessContext&>,
                  "OnEvent<Event>(type, f): f must be callable as absl::Status(const "
                  "v1::EventEnvelope&, const Event&, leftfold::ProcessContext&)");
    handlers_.push_back(internal::ProcessHandler{
        internal::ProcessHandler::Kind::kEvents, std::move(aggregate_type),
        Event::descriptor()->full_name(),
        [f = std::move(f)](const google::protobuf::Message& record,
                           ProcessContext& ctx) -> absl::Status {
          const auto& envelope = static_cast<const v1::EventEnvelope&>(record);
          Event event;
          if (!envelope.payload().UnpackTo(&event)) {
            return absl::DataLossError(absl::StrCat(
                "cannot parse ", Event::descriptor()->full_name(), " at ", ctx.source()));
          }
          return f(envelope, event, ctx);
        }});
    return *this;
  }

  // Calls `f` for every command result on `<aggregate_type>.results`:
  //   absl::Status(const v1::CommandResult& result, ProcessContext& ctx)
  template <typename F>
  ProcessDefinition& OnResults(std::string aggregate_type, F f) {
    static_assert(
        std::is_invocable_r_v<absl::Status, const F&, const v1::CommandResult&, ProcessContext&>,
        "OnResults(type, f): f must be callable as absl::Status(const v1::CommandResult&, "
        "leftfold::ProcessContext&)");
    handlers_.push_back(internal::ProcessHandler{
        internal::ProcessHandler::Kind::kResults, std::move(aggregate_type), "",
        [f = std::move(f)](const google::protobuf::Message& record, ProcessContext& ctx) {
          return f(static_cast<const v1::CommandResult&>(record), ctx);
        }});
    return *this;
  }

  const std::string& name() const { return name_; }
  const std::vector<internal::ProcessHandler>& handlers() const { return handlers_; }

  // A usable name ([A-Za-z0-9._-], 1..200 chars) and at least one handler; INVALID_ARGUMENT.
  absl::Status Validate() const;

 private:
  std::string name_;
  std::vector<internal::ProcessHandler> handlers_;
};

struct ProcessManagerOptions {
  // Consumer group of the instances that share the work. Default: "<prefix><name>.process".
  std::string group;
  // Set it to a stable name per instance (e.g. the pod name) and the instance becomes a static
  // Kafka group member (group.instance.id "<group>-<instance_id>"): a restart with the same id
  // gets its partitions back at once, not after the session timeout; a stopped one keeps them
  // unprocessed until that timeout. Two live instances must never share an id (the broker
  // fences the older one). Default: empty, a dynamic member. The embedded log ignores it.
  std::string instance_id;
  // Most records handled per batch (one produce + flush + offset commit). Default: 500.
  size_t max_batch = 500;
  // Longest wait in one poll; also bounds how long Stop() takes. Default: 100ms.
  absl::Duration poll_timeout = absl::Milliseconds(100);
  // Longest wait for the commands of a batch to be delivered. Default: 30s.
  absl::Duration delivery_timeout = absl::Seconds(30);
};

struct ProcessManagerStats {
  // Records handed to a handler.
  int64_t handled = 0;
  // Records no handler wanted, or that could not be parsed.
  int64_t skipped = 0;
  // Commands produced and acknowledged by the log.
  int64_t commands_sent = 0;
  // Batches whose offsets are committed.
  int64_t batches = 0;
};

// Owned by its creator. Run() on one thread; Stop(), stats() and ready() from any thread.
class ProcessManager {
 public:
  // Validates the definition and creates the source aggregates' topics when missing. Does not
  // join the group yet (Run does).
  static absl::StatusOr<std::unique_ptr<ProcessManager>> Create(
      std::shared_ptr<Transport> transport, ProcessDefinition definition,
      ProcessManagerOptions options = {});
  virtual ~ProcessManager() = default;

  // Processes until Stop() (OK), a handler error, or a log error it cannot retry.
  virtual absl::Status Run() = 0;
  virtual void Stop() = 0;
  virtual ProcessManagerStats stats() const = 0;
  // True once Run has subscribed and completed a first poll.
  virtual bool ready() const = 0;
};

}  // namespace leftfold
