// Views: the read models a projector writes. A view is a named set of rows; each row is a
// protobuf message stored under a string key. Indexes are just more rows the projector writes
// itself (e.g. "by_owner/alice/acct-1").
//
//   absl::Status OnDeposited(const leftfold::EventContext& ctx, const bank::v1::Deposited& e,
//                            leftfold::View& view) {
//     bank::v1::Account row;
//     absl::Status found = view.Get(ctx.aggregate_id(), &row);   // NOT_FOUND: a fresh row
//     if (!found.ok() && !absl::IsNotFound(found)) return found;
//     row.set_balance(row.balance() + e.amount());
//     return view.Put(ctx.aggregate_id(), row);
//   }
//
//   absl::StatusOr<leftfold::ScanPage> page = view.Scan({.prefix = "by_owner/alice/", .limit =
//   50});
//
// Inside a handler, reads see the writes of the batch being processed (read-your-own-batch); the
// batch's writes become visible to queries only when the runtime commits them together with the
// projector's checkpoint.
//
// A View is owned by the runtime (or the test fixture) and lent to one handler call at a time; not
// thread-safe.
//
// SqlView is the PostgreSQL counterpart: the handler runs statements in the batch's SQL
// transaction, which the runtime commits together with the checkpoint row.
//
//   .On<bank::v1::Deposited>([](const leftfold::EventContext& ctx, const bank::v1::Deposited& e,
//                               leftfold::SqlView& sql) -> absl::Status {
//     return sql.Queue("UPDATE balances SET balance = balance + $1 WHERE id = $2",
//                      {e.amount(), ctx.aggregate_id()});   // pipelined; Exec when you need rows
//   })
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/message.h"
#include "leftfold/types.h"

namespace leftfold {

// A row key: anything string-like, or an aggregate id (the common primary key of a view).
class ViewKey {
 public:
  ViewKey(absl::string_view key) : key_(key) {}         // NOLINT: implicit on purpose
  ViewKey(const std::string& key) : key_(key) {}        // NOLINT
  ViewKey(const char* key) : key_(key) {}               // NOLINT
  ViewKey(const AggregateId& id) : key_(id.value()) {}  // NOLINT
  absl::string_view str() const { return key_; }

 private:
  absl::string_view key_;
};

struct ViewRow {
  std::string key;
  // The stored row; its type_url names the message type.
  google::protobuf::Any value;

  // Unpacks `value` into `row`; INVALID_ARGUMENT when the stored type differs.
  absl::Status To(google::protobuf::Message* row) const;
};

// A scan over [start, end) or over every key with `prefix`, in key order.
struct ScanRange {
  // Non-empty: only keys starting with it (start/end are then ignored).
  std::string prefix;
  // Inclusive lower bound. Default: the first key.
  std::string start;
  // Exclusive upper bound. Default: no bound.
  std::string end;
  // Rows per page. Default: 100. 0 means the default.
  size_t limit = 100;
  // From a previous ScanPage::next_page_token, to continue where it stopped.
  std::string page_token;
};

struct ScanPage {
  std::vector<ViewRow> rows;
  // Empty when the scan is complete; otherwise pass it back in ScanRange::page_token.
  std::string next_page_token;
};

class View {
 public:
  virtual ~View() = default;

  // NOT_FOUND when the key has no row; INVALID_ARGUMENT when the row is of another type.
  absl::Status Get(ViewKey key, google::protobuf::Message* row) const;
  template <typename Row>
  absl::StatusOr<Row> Get(ViewKey key) const {
    Row row;
    absl::Status s = Get(key, &row);
    if (!s.ok()) return s;
    return row;
  }
  absl::Status Put(ViewKey key, const google::protobuf::Message& row);
  // Deleting a missing key is not an error.
  absl::Status Delete(ViewKey key);
  absl::StatusOr<ScanPage> Scan(const ScanRange& range) const;

  // The view's name (the projector's name).
  virtual const std::string& name() const = 0;

 protected:
  // Backend hooks: rows travel as serialized google.protobuf.Any.
  virtual absl::StatusOr<std::optional<std::string>> GetRaw(absl::string_view key) const = 0;
  virtual absl::Status PutRaw(absl::string_view key, std::string any_bytes) = 0;
  virtual absl::Status DeleteRaw(absl::string_view key) = 0;
  virtual absl::StatusOr<ScanPage> ScanRaw(const ScanRange& range) const = 0;
  // Optional fast paths for a backend that keeps rows as messages (the RocksDB store's batch
  // holds the rows it read or wrote parsed, and serializes each once, at its commit). Return
  // std::nullopt to take the byte path above; otherwise the result of the Get or Put.
  virtual std::optional<absl::Status> GetMessage(absl::string_view key,
                                                 google::protobuf::Message* row) const {
    (void)key;
    (void)row;
    return std::nullopt;
  }
  virtual std::optional<absl::Status> PutMessage(absl::string_view key,
                                                 const google::protobuf::Message& row) {
    (void)key;
    (void)row;
    return std::nullopt;
  }
};

// One statement parameter: text, a number, a bool, or SQL NULL (std::nullopt / nullptr).
class SqlParam {
 public:
  SqlParam(std::nullptr_t) {}                                // NOLINT: implicit on purpose
  SqlParam(std::nullopt_t) {}                                // NOLINT
  SqlParam(absl::string_view v) : value_(std::string(v)) {}  // NOLINT
  SqlParam(const std::string& v) : value_(v) {}              // NOLINT
  SqlParam(const char* v) : value_(std::string(v)) {}        // NOLINT
  SqlParam(const AggregateId& v) : value_(v.value()) {}      // NOLINT
  SqlParam(bool v) : value_(v ? "true" : "false") {}         // NOLINT
  SqlParam(int32_t v) : value_(std::to_string(v)) {}         // NOLINT
  SqlParam(int64_t v) : value_(std::to_string(v)) {}         // NOLINT
  SqlParam(uint32_t v) : value_(std::to_string(v)) {}        // NOLINT
  SqlParam(uint64_t v) : value_(std::to_string(v)) {}        // NOLINT
  SqlParam(double v) : value_(std::to_string(v)) {}          // NOLINT
  const std::optional<std::string>& value() const { return value_; }

 private:
  std::optional<std::string> value_;
};

// Rows of a statement's result as text (PostgreSQL's text format); std::nullopt is NULL.
struct SqlResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  // Rows changed by INSERT/UPDATE/DELETE.
  int64_t affected_rows = 0;
};

// A handle on the open SQL transaction of the batch being projected. Lent by the runtime to one
// handler call (or the migration) at a time; not thread-safe.
class SqlView {
 public:
  virtual ~SqlView() = default;
  // Runs one statement with $1, $2, ... parameters. An SQL error fails the whole batch's
  // transaction (the runtime then rolls back and treats the event as poison).
  virtual absl::StatusOr<SqlResult> Exec(absl::string_view query,
                                         std::initializer_list<SqlParam> params = {}) = 0;
  virtual absl::StatusOr<SqlResult> Exec(absl::string_view query,
                                         const std::vector<SqlParam>& params) = 0;
  // Like Exec, for a statement whose result the handler does not need (the usual INSERT/UPDATE
  // of a projector): the PostgreSQL store pipelines queued statements, so a batch costs a few
  // round trips instead of one per statement. An error of a queued statement surfaces later (at
  // the next Exec or at the commit) and still makes the event that queued it the poison one.
  // Statements run in the order they are given, Exec and Queue mixed.
  virtual absl::Status Queue(absl::string_view query, std::initializer_list<SqlParam> params = {}) {
    return Exec(query, params).status();
  }
  virtual absl::Status Queue(absl::string_view query, const std::vector<SqlParam>& params) {
    return Exec(query, params).status();
  }
};

}  // namespace leftfold
