// `leftfold inspect TYPE ID`: replays one aggregate's events through the gateway and folds them.
//
// Where the replay ends: an aggregate's events all live in the partition its id hashes to, so the
// CLI replays that one partition from offset 0 with the gateway's stop_at_end: the gateway ends
// the stream (OK) once it has read the partition up to the end offset it had when the replay
// opened (also sent as `leftfold-end-offsets` initial metadata). Nothing is guessed from pauses:
// every event committed before the call is listed, none after. --at-version N stops earlier, at
// the event of version N.
#include <iostream>

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

int RunInspect(const GlobalOptions& global, const InspectOptions& options) {
  const AggregateDefinition* definition = FindAggregate(options.aggregate_type);
  std::shared_ptr<grpc::Channel> channel = Connect(global);
  absl::StatusOr<int32_t> partitions = PartitionCount(global, channel, options.aggregate_type);
  if (!partitions.ok()) {
    absl::StatusCode c = partitions.status().code();
    return ReportLocalError(global, partitions.status(),
                            c == absl::StatusCode::kUnavailable        ? kUnavailable
                            : c == absl::StatusCode::kDeadlineExceeded ? kDeadline
                                                                       : kUsage);
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
  filter.set_stop_at_end(true);  // the other partitions start at their end: nothing to read

  auto stub = v1::CommandGateway::NewStub(channel);
  std::vector<v1::EventEnvelope> events;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + options.timeout));
    InterruptScope interrupt(&ctx);
    auto reader = stub->SubscribeEvents(&ctx, filter);
    v1::EventEnvelope e;
    bool stopped_early = false;
    while (reader->Read(&e)) {
      events.push_back(e);
      if (options.at_version.has_value() && e.version() >= *options.at_version) {
        stopped_early = true;
        ctx.TryCancel();
        break;
      }
    }
    while (reader->Read(&e)) {
    }
    grpc::Status s = reader->Finish();
    if (!s.ok() && !stopped_early) {
      if (InterruptScope::interrupted()) return 130;
      if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        s = grpc::Status(s.error_code(),
                         absl::StrCat("replay of ", topic, " partition ", partition,
                                      " not finished within --timeout (", events.size(),
                                      " events so far): ", s.error_message()));
      }
      return ReportError(global, s);
    }
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
