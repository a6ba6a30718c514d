// `leftfold tail results|events`: a SubscribeResults / SubscribeEvents stream, one line per item.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli.h"
#include "grpcpp/client_context.h"
#include "leftfold/v1/gateway_service.grpc.pb.h"
#include "output.h"

namespace leftfold::cli {
namespace {

// --from-start: position 0 of every partition of each type's topic. The gateway starts unlisted
// partitions at their end, so each must be named: the count comes from PartitionCount.
template <typename Filter>
absl::Status AddFromStart(const GlobalOptions& global,
                          const std::shared_ptr<grpc::Channel>& channel, const TailOptions& options,
                          Filter& filter) {
  if (options.aggregate_types.empty()) {
    return absl::InvalidArgumentError("--from-start needs --type (the topics to replay)");
  }
  for (const std::string& type : options.aggregate_types) {
    absl::StatusOr<int32_t> partitions = PartitionCount(global, channel, type);
    if (!partitions.ok()) return partitions.status();
    for (int32_t p = 0; p < *partitions; ++p) {
      v1::Position* from = filter.add_from();
      from->set_topic(TopicName(global, type, options.events));
      from->set_partition(p);
      from->set_offset(0);
    }
  }
  return absl::OkStatus();
}

template <typename Filter>
void FillFilter(const TailOptions& options, Filter& filter) {
  for (const auto& t : options.aggregate_types) filter.add_aggregate_types(t);
  for (const auto& id : options.aggregate_ids) filter.add_aggregate_ids(id);
  for (const auto& id : options.command_ids) filter.add_command_ids(id);
  filter.set_correlation_id(options.correlation_id);
}

template <typename Item, typename Filter, typename Open, typename Print>
int Stream(const GlobalOptions& global, const std::shared_ptr<grpc::Channel>& channel,
           const TailOptions& options, Open open, Print print) {
  Filter filter;
  FillFilter(options, filter);
  if (options.from_start) {
    absl::Status s = AddFromStart(global, channel, options, filter);
    if (!s.ok()) {
      int code = s.code() == absl::StatusCode::kUnavailable        ? kUnavailable
                 : s.code() == absl::StatusCode::kDeadlineExceeded ? kDeadline
                                                                   : kUsage;
      return ReportLocalError(global, s, code);
    }
  }
  grpc::ClientContext ctx;
  InterruptScope interrupt(&ctx);
  auto reader = open(&ctx, filter);
  int64_t seen = 0;
  Item item;
  while (reader->Read(&item)) {
    print(item);
    if (options.count > 0 && ++seen >= options.count) {
      ctx.TryCancel();
      break;
    }
  }
  while (reader->Read(&item)) {
  }
  grpc::Status s = reader->Finish();
  if (s.ok() || (s.error_code() == grpc::StatusCode::CANCELLED &&
                 (InterruptScope::interrupted() || (options.count > 0 && seen >= options.count)))) {
    return kOk;
  }
  return ReportError(global, s);
}

}  // namespace

int RunTail(const GlobalOptions& global, const TailOptions& options) {
  std::shared_ptr<grpc::Channel> channel = Connect(global);
  auto stub = v1::CommandGateway::NewStub(channel);
  if (options.events) {
    return Stream<v1::EventEnvelope, v1::EventFilter>(
        global, channel, options,
        [&](grpc::ClientContext* ctx, const v1::EventFilter& f) {
          return stub->SubscribeEvents(ctx, f);
        },
        [&](const v1::EventEnvelope& e) { PrintEvent(global, e); });
  }
  return Stream<v1::CommandResult, v1::ResultFilter>(
      global, channel, options,
      [&](grpc::ClientContext* ctx, const v1::ResultFilter& f) {
        return stub->SubscribeResults(ctx, f);
      },
      [&](const v1::CommandResult& r) { PrintResult(global, r); });
}

}  // namespace leftfold::cli
