// ProjectorRuntime: the public face of projection::Runner, wiring a Transport and a view store.
#include "absl/strings/str_cat.h"
#include "leftfold/logging.h"
#include "leftfold/projector.h"
#include "leftfold/transport.h"
#include "projection/rebuilder.h"
#include "projection/runner.h"
#include "store/pg_store.h"
#include "store/rocks_view_store.h"

namespace leftfold {

absl::StatusOr<std::unique_ptr<ProjectorRuntime>> ProjectorRuntime::Start(
    std::shared_ptr<Transport> transport, Projector projector, ProjectorOptions options) {
  if (transport == nullptr) return absl::InvalidArgumentError("ProjectorRuntime needs a Transport");
  if (absl::Status s = projector.Validate(); !s.ok()) return s;
  std::unique_ptr<ProjectorRuntime> runtime(new ProjectorRuntime());
  runtime->transport_ = transport;
  const bool sql = projector.store_kind() == Projector::StoreKind::kSql;
  if (sql) {
    if (options.postgres_uri.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "projector ", projector.name(), " writes SQL: set ProjectorOptions.postgres_uri"));
    }
    auto store = internal::store::PgStore::Open(options.postgres_uri, projector.name(),
                                                projector.migration());
    if (!store.ok()) return store.status();
    runtime->store_ = *std::move(store);
  } else {
    std::string dir = options.store_dir.empty()
                          ? absl::StrCat("leftfold-data/views/", projector.name())
                          : options.store_dir;
    auto store = internal::store::RocksViewStore::Open(dir, projector.name());
    if (!store.ok()) return store.status();
    runtime->store_ = *std::move(store);
    runtime->store_dir_ = dir;
    if (internal::store::RocksViewStore::HasShadow(dir)) {
      LogWarning("projector", "an interrupted rebuild waits; the next Rebuild resumes it",
                 {{"projector", projector.name()}});
    }
  }
  runtime->runner_ = std::make_unique<internal::projection::Runner>(
      transport->log_internal(), std::move(projector), *runtime->store_,
      internal::projection::RunnerOptions{
          .topic_prefix = transport->options().topic_prefix,
          .partitions = transport->options().partitions,
          .dead_letter = options.dead_letter,
          .max_batch = options.max_batch != 0 ? options.max_batch
                       : sql                  ? internal::projection::kDefaultSqlBatch
                                              : internal::projection::kDefaultViewBatch,
          .poll_timeout = options.poll_timeout,
          .instance_id = options.instance_id,
      });
  if (absl::Status s = runtime->runner_->Start(); !s.ok()) return s;
  return runtime;
}

ProjectorRuntime::~ProjectorRuntime() {
  if (runner_) runner_->Stop().IgnoreError();
  runner_.reset();  // before the store it writes
  store_.reset();
}

absl::Status ProjectorRuntime::Stop() { return runner_->Stop(); }

absl::StatusOr<std::vector<PartitionLag>> ProjectorRuntime::Lag() const { return runner_->Lag(); }

absl::Status ProjectorRuntime::WaitFor(const std::vector<v1::Position>& positions,
                                       absl::Time deadline) const {
  return runner_->WaitFor(positions, deadline);
}

absl::Status ProjectorRuntime::Rebuild(std::function<void(const RebuildProgress&)> on_progress) {
  auto* rocks = dynamic_cast<internal::store::RocksViewStore*>(store_.get());
  if (rocks == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("projector ", runner_->projector().name(),
                     " writes SQL: rebuild it by truncating its tables and its checkpoints"));
  }
  internal::projection::Rebuilder rebuilder(transport_->log_internal(), *runner_, *rocks);
  return rebuilder.Run(on_progress);
}

bool ProjectorRuntime::RebuildPending() const {
  return !store_dir_.empty() && internal::store::RocksViewStore::HasShadow(store_dir_);
}

const View* ProjectorRuntime::view() const {
  auto* rocks = dynamic_cast<internal::store::RocksViewStore*>(store_.get());
  return rocks ? &rocks->committed() : nullptr;
}

}  // namespace leftfold
