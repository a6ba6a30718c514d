// The ViewQuery gRPC service (proto/leftfold/v1/query_service.proto): Get and Scan on the
// projectors' RocksDB views of this process, with consistency-token waits, and per-partition Lag.
//
//   ViewQueryService service;
//   service.AddProjector(runtime->runner_internal(), runtime->view());
//   grpc::ServerBuilder builder;
//   builder.RegisterService(&service);
//
// A token wait blocks the gRPC callback thread until the view has applied the positions or the
// call's deadline passes (absl::Mutex condition, no polling). Views are registered before the
// server starts; the runners and views must outlive the service. Thread-safe after registration.
//
// Rebuild (server stream of progress) is served for the projectors registered with AddRebuild,
// e.g. service.AddRebuild(*runtime). A rebuild blocks for minutes, so each runs on a thread of
// its own (not a gRPC thread); it goes on if the client leaves, and the service's destructor
// waits for it.
#pragma once

#include <functional>
#include <list>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "leftfold/v1/query_service.grpc.pb.h"
#include "leftfold/view.h"
#include "projection/runner.h"

namespace leftfold::internal::projection {

class ViewQueryService final : public v1::ViewQuery::CallbackService {
 public:
  // Serves the projector's view under its name (view may be nullptr: a SQL projector, Lag only).
  void AddProjector(const Runner& runner, const View* view);
  // Serves Rebuild for `projector`: `rebuild` blocks until the swap, reporting progress.
  using RebuildFn =
      std::function<absl::Status(std::function<void(const RebuildProgress&)> on_progress)>;
  void AddRebuild(const std::string& projector, RebuildFn rebuild);
  // ProjectorRuntime::Rebuild; the runtime must outlive the service.
  void AddRebuild(ProjectorRuntime& runtime);
  ~ViewQueryService() override;

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context, const v1::GetRequest* request,
                                v1::GetResponse* response) override;
  grpc::ServerUnaryReactor* Scan(grpc::CallbackServerContext* context,
                                 const v1::ScanRequest* request,
                                 v1::ScanResponse* response) override;
  grpc::ServerUnaryReactor* Lag(grpc::CallbackServerContext* context, const v1::LagRequest* request,
                                v1::LagResponse* response) override;
  grpc::ServerWriteReactor<v1::RebuildProgress>* Rebuild(
      grpc::CallbackServerContext* context, const v1::RebuildRequest* request) override;

 private:
  struct Entry {
    const Runner* runner;
    const View* view;
  };
  // NOT_FOUND for an unknown view; then the token wait.
  absl::StatusOr<Entry> Prepare(grpc::CallbackServerContext* context, const std::string& view,
                                const google::protobuf::RepeatedPtrField<v1::Position>& token);

  std::map<std::string, Entry> entries_;
  std::map<std::string, RebuildFn> rebuilds_;

  absl::Mutex rebuild_mu_;
  std::set<std::string> rebuilding_ ABSL_GUARDED_BY(rebuild_mu_);
  std::list<std::thread> rebuild_threads_ ABSL_GUARDED_BY(rebuild_mu_);
};

}  // namespace leftfold::internal::projection
