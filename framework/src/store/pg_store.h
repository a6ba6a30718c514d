// The PostgreSQL view store: a projector's handlers run SQL in one transaction per batch, and the
// framework writes the checkpoint rows (projector, topic, partition, next offset) in the SAME
// transaction, so the tables are exactly-once. Users query the tables with plain SQL.
//
//   auto store = PgStore::Open("postgresql://app@db/app", projector.name(), projector.migration());
//   auto batch = (*store)->Begin();
//   (*batch)->sql()->Queue("INSERT INTO balances ...", {...});   // pipelined
//   (*batch)->Commit(checkpoints);
//
// A batch is one transaction in libpq's pipeline mode: statements are prepared once per
// connection (by their text) and Queue'd ones are sent without waiting for their results, so a
// batch of N events costs a few round trips, not N. A lost connection is re-opened by the next
// Begin (or LoadCheckpoints).
//
// Schema: the framework creates `leftfold_checkpoints`; the projector's Migrate function creates
// its own tables at Open, in its own transaction. Owned by the caller; one connection, used by
// the runtime thread (Open and LoadCheckpoints may be called before the runtime starts).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "leftfold/view.h"
#include "store/projection_store.h"

namespace leftfold::internal::store {

class PgStore : public ProjectionStore {
 public:
  static absl::StatusOr<std::unique_ptr<PgStore>> Open(
      const std::string& uri, const std::string& projector,
      const std::function<absl::Status(SqlView&)>& migration);
  ~PgStore() override;

  absl::StatusOr<Checkpoints> LoadCheckpoints() override;
  absl::StatusOr<std::unique_ptr<Batch>> Begin() override;

 private:
  PgStore();
  struct Connection;  // libpq's, kept out of this header
  std::string projector_;
  std::unique_ptr<Connection> conn_;
};

}  // namespace leftfold::internal::store
