// The default view store: one RocksDB database per projector, holding its view's rows and its
// checkpoints. A batch is a WriteBatchWithIndex, so a handler reads its own batch's pending
// writes, and rows + checkpoints land in one atomic, durable write.
//
//   auto store = RocksViewStore::Open("/var/lib/app/views/account_balances", "account_balances");
//   const View& rows = (*store)->committed();        // queries: committed rows only
//   auto batch = (*store)->Begin(); ... (*batch)->Commit(checkpoints);
//
// Key layout: "r" + row key for rows, "c" + topic + "/" + partition for checkpoints (value:
// decimal next offset). Owned by the caller; committed() and LoadCheckpoints are thread-safe,
// Begin/Commit belong to the runtime thread.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "store/projection_store.h"

namespace rocksdb {
class DB;
}

namespace leftfold::internal::store {

class RocksViewStore : public ProjectionStore {
 public:
  static absl::StatusOr<std::unique_ptr<RocksViewStore>> Open(const std::string& dir,
                                                              const std::string& view_name);
  ~RocksViewStore() override;

  absl::StatusOr<Checkpoints> LoadCheckpoints() override;
  absl::StatusOr<std::unique_ptr<Batch>> Begin() override;
  // Read-only view of the committed rows (Put/Delete fail with FAILED_PRECONDITION).
  const View& committed() const { return *committed_; }
  const std::string& name() const { return name_; }

 private:
  RocksViewStore() = default;
  std::string name_;
  std::unique_ptr<rocksdb::DB> db_;
  std::unique_ptr<View> committed_;
};

}  // namespace leftfold::internal::store
