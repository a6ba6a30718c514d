// `leftfold tail results|events`: a SubscribeResults / SubscribeEvents stream, one line per item.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli.h"
#include "grpcpp/client_context.h"
#include "leftfold/v1/gateway_service.grpc.pb.h"
#include "output.h"

namespace leftfold::cli {
namespace {

template <typename Filter>
void FillFilter(const TailOptions& options, Filter& filter) {
  for (const auto& t : options.aggregate_types) filter.add_aggregate_types(t);
  for (const auto& id : options.aggregate_ids) filter.add_aggregate_ids(id);
  for (const auto& id : options.command_ids) filter.add_command_ids(id);
  filter.set_correlation_id(options.correlation_id);
  // The gateway replays every partition of the subscribed topics from 0 and, with stop_at_end,
  // ends the stream itself at the end offsets it had when the replay opened.
  filter.set_from_start(options.from_start);
  filter.set_stop_at_end(options.from_start && options.to_end);
}

template <typename Item, typename Filter, typename Open, typename Print>
int Stream(const GlobalOptions& global, const TailOptions& options, Open open, Print print) {
  Filter filter;
  FillFilter(options, filter);
  if (options.to_end && !options.from_start) {
    return ReportLocalError(global, absl::InvalidArgumentError("--to-end needs --from-start"),
                            kUsage);
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
  auto stub = v1::CommandGateway::NewStub(Connect(global));
  if (options.events) {
    return Stream<v1::EventEnvelope, v1::EventFilter>(
        global, options,
        [&](grpc::ClientContext* ctx, const v1::EventFilter& f) {
          return stub->SubscribeEvents(ctx, f);
        },
        [&](const v1::EventEnvelope& e) { PrintEvent(global, e); });
  }
  return Stream<v1::CommandResult, v1::ResultFilter>(
      global, options,
      [&](grpc::ClientContext* ctx, const v1::ResultFilter& f) {
        return stub->SubscribeResults(ctx, f);
      },
      [&](const v1::CommandResult& r) { PrintResult(global, r); });
}

}  // namespace leftfold::cli
