// The default view store: one RocksDB database per projector, holding its view's rows and its
// checkpoints. A batch keeps the last value of each row it wrote (a handler reads its own batch's
// writes), and rows + checkpoints land in one atomic WriteBatch.
//
//   auto store = RocksViewStore::Open("/var/lib/app/views/account_balances", "account_balances");
//   const View& rows = (*store)->committed();        // queries: committed rows only
//   auto batch = (*store)->Begin(); ... (*batch)->Commit(checkpoints);
//
// Key layout: "r" + row key for rows, "c" + topic + "/" + partition for checkpoints (value:
// decimal next offset). Owned by the caller; committed() and LoadCheckpoints are thread-safe,
// Begin/Commit/Flush belong to the runtime thread.
//
// Commit pipelining: Commit builds the batch's WriteBatch (rows + checkpoints), hands it to the
// store's writer thread and returns; the next batch's handlers run meanwhile and read the
// committed rows from the store's row cache. One write is in flight at most: the next Commit
// waits for it. Watermarks (token waits) and queries see a batch only once it is in RocksDB.
// A failed background write is returned by the next Commit or Flush; the row cache is emptied
// then and the runtime resumes from LoadCheckpoints (which waits for the write in flight).
//
// Rebuild (projection/rebuilder.h): a shadow store in ShadowDir(dir) is filled from offset 0, then
// SwapIn() replaces this store's database by the shadow's. committed() stays the same object
// across the swap (readers hold a shared lock), so a View handed to the query service keeps
// working. The swap is crash-safe: the shadow is marked complete (a file, fsynced) before
// "dir" -> "dir.old" and "dir.rebuild" -> "dir" are renamed, and Open() finishes an interrupted
// swap; an incomplete shadow is left for the next rebuild to resume.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "store/projection_store.h"

namespace rocksdb {
class DB;
}

namespace leftfold::internal::store {

class RowCache;
class CommitWriter;

class RocksViewStore : public ProjectionStore {
 public:
  static absl::StatusOr<std::unique_ptr<RocksViewStore>> Open(const std::string& dir,
                                                              const std::string& view_name);
  // The shadow store of a rebuild of the view at `dir`: created empty, or reopened as left by an
  // interrupted rebuild (its own checkpoints say where to resume).
  static absl::StatusOr<std::unique_ptr<RocksViewStore>> OpenShadow(const std::string& dir,
                                                                    const std::string& view_name);
  static std::string ShadowDir(const std::string& dir) { return dir + ".rebuild"; }
  // True when a rebuild of the view at `dir` was started and not swapped in yet.
  static bool HasShadow(const std::string& dir);
  ~RocksViewStore() override;

  // Replaces this store's rows and checkpoints by those of `shadow` (from OpenShadow on this
  // store's dir), atomically for readers and crash-safely on disk. No Batch of this store may be
  // alive (the caller pauses the runner). On error the store may be unusable (queries fail
  // UNAVAILABLE); reopening the dir recovers a consistent view.
  absl::Status SwapIn(std::unique_ptr<RocksViewStore> shadow);

  absl::StatusOr<Checkpoints> LoadCheckpoints() override;
  absl::StatusOr<std::unique_ptr<Batch>> Begin() override;
  absl::Status Flush() override;
  // Read-only view of the committed rows (Put/Delete fail with FAILED_PRECONDITION).
  const View& committed() const { return *committed_; }
  const std::string& name() const { return name_; }
  const std::string& dir() const { return dir_; }

 private:
  RocksViewStore() = default;
  static absl::StatusOr<std::unique_ptr<RocksViewStore>> OpenAt(const std::string& dir,
                                                                const std::string& view_name);
  void CloseDb();

  std::string name_;
  std::string dir_;
  // Exclusive only while SwapIn replaces the database; queries and LoadCheckpoints hold it shared.
  mutable absl::Mutex db_mu_;
  rocksdb::DB* db_ ABSL_GUARDED_BY(db_mu_) = nullptr;  // owned
  std::unique_ptr<View> committed_;
  // Committed rows the batches read or wrote lately, kept parsed where possible. This store's
  // batches are the database's only writer, so the cache cannot go stale; SwapIn empties it.
  // Saves a RocksDB lookup and a parse per read of a hot row (a counter, an active account).
  // Used by the runtime thread only (Begin/Commit, and SwapIn while the runtime is paused).
  std::unique_ptr<RowCache> row_cache_;
  // Writes committed batches on its own thread, one at a time, while the runtime thread runs
  // the next batch's handlers (which read the written rows from row_cache_).
  std::unique_ptr<CommitWriter> writer_;
};

}  // namespace leftfold::internal::store
