#include "projection/query_service.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_grpc.h"
#include "absl/time/time.h"

namespace leftfold::internal::projection {
namespace {

constexpr size_t kMaxLimit = 10000;

absl::Time DeadlineOf(grpc::CallbackServerContext* context) {
  std::chrono::system_clock::time_point d = context->deadline();
  if (d == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(d);
}

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& s) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(internal::ToGrpcStatus(s));
  return reactor;
}

}  // namespace

void ViewQueryService::AddProjector(const Runner& runner, const View* view) {
  entries_[runner.projector().name()] = Entry{&runner, view};
}

absl::StatusOr<ViewQueryService::Entry> ViewQueryService::Prepare(
    grpc::CallbackServerContext* context, const std::string& view,
    const google::protobuf::RepeatedPtrField<v1::Position>& token) {
  auto it = entries_.find(view);
  if (it == entries_.end() || it->second.view == nullptr) {
    return absl::NotFoundError(absl::StrCat("no view named '", view, "' is served here"));
  }
  if (!token.empty()) {
    std::vector<v1::Position> positions(token.begin(), token.end());
    absl::Status s = it->second.runner->WaitFor(positions, DeadlineOf(context));
    if (!s.ok()) return s;
  }
  return it->second;
}

grpc::ServerUnaryReactor* ViewQueryService::Get(grpc::CallbackServerContext* context,
                                                const v1::GetRequest* request,
                                                v1::GetResponse* response) {
  absl::StatusOr<Entry> entry = Prepare(context, request->view(), request->consistency_token());
  if (!entry.ok()) return Finish(context, entry.status());
  ScanRange range;
  // A one-row scan returns the Any as stored, whatever its type.
  range.start = request->key();
  range.end = request->key() + std::string(1, '\0');
  range.limit = 1;
  absl::StatusOr<ScanPage> page = entry->view->Scan(range);
  if (!page.ok()) return Finish(context, page.status());
  if (page->rows.empty()) {
    return Finish(context, absl::NotFoundError(absl::StrCat("view ", request->view(),
                                                            " has no row '", request->key(), "'")));
  }
  response->set_key(request->key());
  *response->mutable_row() = std::move(page->rows[0].value);
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ViewQueryService::Scan(grpc::CallbackServerContext* context,
                                                 const v1::ScanRequest* request,
                                                 v1::ScanResponse* response) {
  absl::StatusOr<Entry> entry = Prepare(context, request->view(), request->consistency_token());
  if (!entry.ok()) return Finish(context, entry.status());
  ScanRange range{
      .prefix = request->prefix(),
      .start = request->start_key(),
      .end = request->end_key(),
      .limit = std::min<size_t>(request->limit() == 0 ? 100 : request->limit(), kMaxLimit),
      .page_token = request->page_token()};
  absl::StatusOr<ScanPage> page = entry->view->Scan(range);
  if (!page.ok()) return Finish(context, page.status());
  for (ViewRow& r : page->rows) {
    v1::ViewRow* out = response->add_rows();
    out->set_key(std::move(r.key));
    *out->mutable_row() = std::move(r.value);
  }
  response->set_next_page_token(std::move(page->next_page_token));
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ViewQueryService::Lag(grpc::CallbackServerContext* context,
                                                const v1::LagRequest* request,
                                                v1::LagResponse* response) {
  auto it = entries_.find(request->projector());
  if (it == entries_.end()) {
    return Finish(context, absl::NotFoundError(absl::StrCat("no projector named '",
                                                            request->projector(), "' runs here")));
  }
  absl::StatusOr<std::vector<PartitionLag>> lag = it->second.runner->Lag();
  if (!lag.ok()) return Finish(context, lag.status());
  for (const PartitionLag& l : *lag) {
    v1::PartitionLag* out = response->add_partitions();
    out->set_topic(l.checkpoint.topic());
    out->set_partition(l.checkpoint.partition());
    out->set_checkpoint(l.checkpoint.offset());
    out->set_end_offset(l.end_offset);
    out->set_lag(l.lag);
    if (!l.halted.ok()) out->set_halted(l.halted.ToString());
  }
  return Finish(context, absl::OkStatus());
}

}  // namespace leftfold::internal::projection
