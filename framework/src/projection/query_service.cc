#include "projection/query_service.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status_grpc.h"
#include "common/thread_name.h"

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

v1::RebuildProgress ToProto(const RebuildProgress& p) {
  v1::RebuildProgress out;
  out.set_events_done(p.events_done);
  out.set_events_total(p.events_total);
  out.set_events_per_second(p.events_per_second);
  out.set_eta_seconds(p.eta == absl::InfiniteDuration() ? -1 : absl::ToDoubleSeconds(p.eta));
  out.set_swapped(p.swapped);
  return out;
}

// Streams a rebuild's progress. The rebuild thread reports; only the latest progress waits while
// a write is in flight (a slow client sees fewer updates, never a backlog). Shared between gRPC
// (until OnDone) and the rebuild thread, which may outlive the call.
class RebuildReactor : public grpc::ServerWriteReactor<v1::RebuildProgress> {
 public:
  static std::shared_ptr<RebuildReactor> Create() {
    std::shared_ptr<RebuildReactor> r(new RebuildReactor());
    r->self_ = r;
    return r;
  }

  void Progress(const RebuildProgress& p) {
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
      pending_ = ToProto(p);
    }
    Pump();
  }
  void Finished(const absl::Status& s) {
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
      final_ = s;
    }
    Pump();
  }
  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      // The client left: stop streaming; the rebuild itself goes on.
      if (!ok && !final_) final_ = absl::CancelledError("client went away");
    }
    Pump();
  }
  void OnDone() override {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    self_.reset();  // may delete this
  }

 private:
  RebuildReactor() = default;

  // Starts the next write or the Finish, outside the lock: gRPC may react inline.
  void Pump() {
    std::optional<absl::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finish_called_ || done_) return;
      if (pending_) {
        current_ = std::move(*pending_);
        pending_.reset();
        writing_ = true;
      } else if (final_) {
        finish_called_ = true;
        finish = final_;
      } else {
        return;
      }
    }
    if (finish) {
      Finish(internal::ToGrpcStatus(*finish));
    } else {
      StartWrite(&current_);
    }
  }

  absl::Mutex mu_;
  std::optional<v1::RebuildProgress> pending_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> final_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  v1::RebuildProgress current_;  // the write in flight
  std::shared_ptr<RebuildReactor> self_;
};

}  // namespace

ViewQueryService::~ViewQueryService() {
  std::list<std::thread> threads;
  {
    absl::MutexLock lock(&rebuild_mu_);
    threads.swap(rebuild_threads_);
  }
  for (std::thread& t : threads) t.join();
}

void ViewQueryService::AddRebuild(const std::string& projector, RebuildFn rebuild) {
  rebuilds_[projector] = std::move(rebuild);
}

void ViewQueryService::AddRebuild(ProjectorRuntime& runtime) {
  AddRebuild(runtime.runner_internal().projector().name(),
             [&runtime](std::function<void(const RebuildProgress&)> on_progress) {
               return runtime.Rebuild(std::move(on_progress));
             });
}

grpc::ServerWriteReactor<v1::RebuildProgress>* ViewQueryService::Rebuild(
    grpc::CallbackServerContext*, const v1::RebuildRequest* request) {
  std::shared_ptr<RebuildReactor> reactor = RebuildReactor::Create();
  const std::string name = request->projector();
  auto it = rebuilds_.find(name);
  if (it == rebuilds_.end()) {
    reactor->Finished(
        entries_.count(name)
            ? absl::UnimplementedError(absl::StrCat("projector ", name, " cannot be rebuilt here"))
            : absl::NotFoundError(absl::StrCat("no projector named '", name, "' runs here")));
    return reactor.get();
  }
  absl::MutexLock lock(&rebuild_mu_);
  if (!rebuilding_.insert(name).second) {
    reactor->Finished(
        absl::FailedPreconditionError(absl::StrCat("a rebuild of ", name, " is running already")));
    return reactor.get();
  }
  RebuildReactor* raw = reactor.get();
  rebuild_threads_.emplace_back([this, name, fn = it->second, reactor = std::move(reactor)] {
    NameThisThread("lf-proj-rebuild");
    absl::Status s = fn([&reactor](const RebuildProgress& p) { reactor->Progress(p); });
    {
      absl::MutexLock lock(&rebuild_mu_);
      rebuilding_.erase(name);
    }
    reactor->Finished(s);
  });
  return raw;
}

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
