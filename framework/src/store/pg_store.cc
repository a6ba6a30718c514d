#include "store/pg_store.h"

#include <exception>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pqxx/pqxx"

namespace leftfold::internal::store {
namespace {

// pqxx reports by exception; this is the one place they turn into a Status.
absl::Status FromException(absl::string_view what) {
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return absl::UnavailableError(absl::StrCat("postgres ", what, ": ", e.what()));
  } catch (const pqxx::in_doubt_error& e) {
    return absl::UnknownError(absl::StrCat("postgres ", what, " (outcome unknown): ", e.what()));
  } catch (const pqxx::sql_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("postgres ", what, ": ", e.what(), " [", e.query(), "]"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("postgres ", what, ": ", e.what()));
  }
}

class PgSqlView : public SqlView {
 public:
  explicit PgSqlView(pqxx::transaction_base& tx) : tx_(tx) {}

  absl::StatusOr<SqlResult> Exec(absl::string_view query,
                                 std::initializer_list<SqlParam> params) override {
    return Run(query, params.begin(), params.end());
  }
  absl::StatusOr<SqlResult> Exec(absl::string_view query,
                                 const std::vector<SqlParam>& params) override {
    return Run(query, params.data(), params.data() + params.size());
  }

 private:
  absl::StatusOr<SqlResult> Run(absl::string_view query, const SqlParam* begin,
                                const SqlParam* end) {
    std::vector<const char*> values;  // nullptr is SQL NULL
    for (const SqlParam* p = begin; p != end; ++p) {
      values.push_back(p->value() ? p->value()->c_str() : nullptr);
    }
    try {
      pqxx::result r =
          tx_.exec_params(std::string(query), pqxx::prepare::make_dynamic_params(values));
      SqlResult out;
      out.affected_rows = r.affected_rows();
      for (pqxx::row::size_type c = 0; c < r.columns(); ++c)
        out.columns.push_back(r.column_name(c));
      out.rows.reserve(r.size());
      for (const pqxx::row& row : r) {
        auto& dst = out.rows.emplace_back();
        for (const pqxx::field& f : row) {
          dst.push_back(f.is_null() ? std::nullopt : std::optional<std::string>(f.c_str()));
        }
      }
      return out;
    } catch (...) {
      return FromException("exec");
    }
  }
  pqxx::transaction_base& tx_;
};

class PgBatch : public Batch {
 public:
  PgBatch(pqxx::connection& conn, const std::string& projector, Watermarks* watermarks)
      : tx_(conn), sql_(tx_), projector_(projector), watermarks_(watermarks) {}

  View* view() override { return nullptr; }
  SqlView* sql() override { return &sql_; }

  absl::Status Commit(const Checkpoints& checkpoints) override {
    try {
      for (const auto& [tp, offset] : checkpoints) {
        tx_.exec_params(
            "INSERT INTO leftfold_checkpoints (projector, topic, partition, next_offset) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (projector, topic, partition) "
            "DO UPDATE SET next_offset = EXCLUDED.next_offset",
            projector_, tp.topic, tp.partition, offset);
      }
      tx_.commit();
    } catch (...) {
      return FromException("commit");
    }
    watermarks_->Advance(checkpoints);
    return absl::OkStatus();
  }

 private:
  pqxx::work tx_;
  PgSqlView sql_;
  const std::string& projector_;
  Watermarks* watermarks_;
};

}  // namespace

struct PgStore::Connection {
  explicit Connection(const std::string& uri) : c(uri) {}
  pqxx::connection c;
};

PgStore::PgStore() = default;

absl::StatusOr<std::unique_ptr<PgStore>> PgStore::Open(
    const std::string& uri, const std::string& projector,
    const std::function<absl::Status(SqlView&)>& migration) {
  std::unique_ptr<PgStore> store(new PgStore());
  store->projector_ = projector;
  try {
    store->conn_ = std::make_unique<Connection>(uri);
    pqxx::work tx(store->conn_->c);
    tx.exec(
        "CREATE TABLE IF NOT EXISTS leftfold_checkpoints ("
        " projector text NOT NULL, topic text NOT NULL, partition integer NOT NULL,"
        " next_offset bigint NOT NULL, PRIMARY KEY (projector, topic, partition))");
    if (migration) {
      PgSqlView sql(tx);
      absl::Status s = migration(sql);
      if (!s.ok()) {
        return absl::Status(s.code(),
                            absl::StrCat("projector ", projector, " migration: ", s.message()));
      }
    }
    tx.commit();
  } catch (...) {
    return FromException("open");
  }
  absl::StatusOr<Checkpoints> checkpoints = store->LoadCheckpoints();
  if (!checkpoints.ok()) return checkpoints.status();
  store->watermarks_.Advance(*checkpoints);
  return store;
}

PgStore::~PgStore() = default;

absl::StatusOr<Checkpoints> PgStore::LoadCheckpoints() {
  try {
    pqxx::read_transaction tx(conn_->c);
    pqxx::result r = tx.exec_params(
        "SELECT topic, partition, next_offset FROM leftfold_checkpoints WHERE projector = $1",
        projector_);
    Checkpoints out;
    for (const pqxx::row& row : r) {
      out[{row[0].as<std::string>(), row[1].as<int32_t>()}] = row[2].as<int64_t>();
    }
    return out;
  } catch (...) {
    return FromException("load checkpoints");
  }
}

absl::StatusOr<std::unique_ptr<Batch>> PgStore::Begin() {
  try {
    return std::unique_ptr<Batch>(new PgBatch(conn_->c, projector_, &watermarks_));
  } catch (...) {
    return FromException("begin");
  }
}

}  // namespace leftfold::internal::store
