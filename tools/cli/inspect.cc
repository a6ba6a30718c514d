// `leftfold inspect TYPE ID`: replays one aggregate's events through the gateway and folds them.
//
// Where the replay ends: the gateway's event stream has no "caught up" marker, and events carry
// no offsets. What it does give: initial metadata once the replay consumer is open (every later
// record of the partition is read), and a replay paced only by its reader. So the CLI replays
// the one partition the aggregate id hashes to, from offset 0, and stops when
//   - the stream has been open and quiet for --idle (default 1s): the backlog is drained, or
//   - the event of --at-version N arrived (nothing later matters).
// A partition with a long backlog of OTHER aggregates' events can keep the stream quiet for
// longer than --idle before this aggregate's events arrive; raise --idle for such topics.
#include <condition_variable>
#include <deque>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "aggregates.h"
#include "cli.h"
#include "grpcpp/client_context.h"
#include "leftfold/v1/gateway_service.grpc.pb.h"
#include "log/log.h"
#include "messages.h"
#include "output.h"

namespace leftfold::cli {
namespace {

// Reads a stream on its own thread so the caller can wait with a timeout.
class EventPump {
 public:
  EventPump(v1::CommandGateway::Stub& stub, const v1::EventFilter& filter) {
    thread_ = std::thread([this, &stub, filter] {
      auto reader = stub.SubscribeEvents(&ctx_, filter);
      reader->WaitForInitialMetadata();
      {
        std::lock_guard<std::mutex> lock(mu_);
        open_ = true;
      }
      cv_.notify_all();
      v1::EventEnvelope e;
      while (reader->Read(&e)) {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(e);
        cv_.notify_all();
      }
      grpc::Status s = reader->Finish();
      std::lock_guard<std::mutex> lock(mu_);
      status_ = s;
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~EventPump() {
    ctx_.TryCancel();
    thread_.join();
  }

  grpc::ClientContext& ctx() { return ctx_; }

  // False when the stream ended or `deadline` passed first.
  bool WaitOpen(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, deadline, [&] { return open_ || ended_; });
    return open_ && !ended_;
  }

  enum class Next { kEvent, kIdle, kEnded };
  Next Pop(std::chrono::steady_clock::time_point until, v1::EventEnvelope& out) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, until, [&] { return !queue_.empty() || ended_; });
    if (!queue_.empty()) {
      out = std::move(queue_.front());
      queue_.pop_front();
      return Next::kEvent;
    }
    return ended_ ? Next::kEnded : Next::kIdle;
  }

  grpc::Status status() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

 private:
  grpc::ClientContext ctx_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  bool ended_ = false;
  std::deque<v1::EventEnvelope> queue_;
  grpc::Status status_;
  std::thread thread_;
};

}  // namespace

int RunInspect(const GlobalOptions& global, const InspectOptions& options) {
  const AggregateDefinition* definition = FindAggregate(options.aggregate_type);
  std::shared_ptr<grpc::Channel> channel = Connect(global);
  absl::StatusOr<int32_t> partitions = PartitionCount(global, channel, options.aggregate_type);
  if (!partitions.ok()) {
    return ReportLocalError(
        global, partitions.status(),
        partitions.status().code() == absl::StatusCode::kUnavailable ? kUnavailable : kUsage);
  }
  // An aggregate's events all live in the partition its id hashes to.
  int32_t partition = internal::log::PartitionForKey(options.aggregate_id, *partitions);
  std::string topic = TopicName(global, options.aggregate_type, /*events=*/true);

  v1::EventFilter filter;
  filter.add_aggregate_types(options.aggregate_type);
  filter.add_aggregate_ids(options.aggregate_id);
  v1::Position* from = filter.add_from();
  from->set_topic(topic);
  from->set_partition(partition);
  from->set_offset(0);

  auto stub = v1::CommandGateway::NewStub(channel);
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(options.timeout);
  std::vector<v1::EventEnvelope> events;
  bool timed_out = false;
  {
    EventPump pump(*stub, filter);
    InterruptScope interrupt(&pump.ctx());
    if (!pump.WaitOpen(deadline)) {
      grpc::Status s = pump.status();
      if (s.ok()) s = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "replay did not start");
      return ReportError(global, s);
    }
    for (;;) {
      auto until = std::min(
          deadline, std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(options.idle));
      v1::EventEnvelope e;
      EventPump::Next next = pump.Pop(until, e);
      if (next == EventPump::Next::kEnded) {
        grpc::Status s = pump.status();
        if (InterruptScope::interrupted()) return 130;
        return ReportError(global, s);
      }
      if (next == EventPump::Next::kIdle) {
        timed_out = std::chrono::steady_clock::now() >= deadline;
        break;
      }
      events.push_back(std::move(e));
      if (options.at_version.has_value() && events.back().version() >= *options.at_version) break;
    }
  }
  if (timed_out) {
    std::cerr << "warning: --timeout reached while events were still arriving; the list may be "
                 "incomplete"
              << std::endl;
  }
  if (events.empty()) {
    return ReportLocalError(
        global,
        absl::NotFoundError(
            absl::StrCat("no events for ", options.aggregate_type, "/", options.aggregate_id)),
        kNotFound);
  }

  std::unique_ptr<google::protobuf::Message> state =
      definition != nullptr ? definition->NewState() : nullptr;
  int64_t folded = 0;
  std::string fold_error;
  int64_t expected = 1;
  for (const v1::EventEnvelope& e : events) {
    if (e.version() != expected) {
      std::cerr << "warning: version " << e.version() << " follows " << expected - 1
                << " (versions should be contiguous)" << std::endl;
    }
    expected = e.version() + 1;
    if (options.at_version.has_value() && e.version() > *options.at_version) continue;
    if (state != nullptr && fold_error.empty()) {
      absl::Status s = definition->Apply(*state, e.payload());
      if (s.ok()) {
        folded = e.version();
      } else {
        fold_error = absl::StrCat("apply of version ", e.version(), " failed: ", s.ToString());
      }
    }
  }

  if (global.json) {
    std::string out =
        absl::StrCat("{\"aggregateType\":\"", options.aggregate_type, "\",\"aggregateId\":\"",
                     options.aggregate_id, "\",\"partition\":", partition, ",\"events\":[");
    bool first = true;
    for (const v1::EventEnvelope& e : events) {
      if (options.at_version.has_value() && e.version() > *options.at_version) continue;
      absl::StrAppend(&out, first ? "" : ",", ToJson(e));
      first = false;
    }
    absl::StrAppend(&out, "]");
    if (state != nullptr) {
      absl::StrAppend(&out, ",\"version\":", folded, ",\"state\":", ToJson(*state));
    }
    if (!fold_error.empty()) absl::StrAppend(&out, ",\"foldError\":\"", fold_error, "\"");
    std::cout << out << "}" << std::endl;
  } else {
    std::cout << options.aggregate_type << "/" << options.aggregate_id << " (" << topic
              << " partition " << partition << ")" << std::endl;
    for (const v1::EventEnvelope& e : events) {
      if (options.at_version.has_value() && e.version() > *options.at_version) continue;
      std::cout << "  ";
      PrintEvent(global, e);
    }
    if (state == nullptr) {
      std::cout << "state: not shown, the CLI does not know aggregate type '"
                << options.aggregate_type
                << "' (known: " << absl::StrJoin(KnownAggregateTypes(), ", ") << ")" << std::endl;
    } else {
      std::cout << "state at version " << folded << ": " << ToJson(*state) << std::endl;
    }
    if (!fold_error.empty()) std::cerr << "error: " << fold_error << std::endl;
  }
  return fold_error.empty() ? kOk : kUsage;
}

}  // namespace leftfold::cli
