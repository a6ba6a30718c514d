#include "store/pg_store.h"

#include <libpq-fe.h>

#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

// libpq directly (not libpqxx) because a batch runs in libpq's pipeline mode: a handler's
// statements are sent without waiting for each result, so a batch of N events costs about
// N / kMaxInFlight round trips instead of N. libpqxx 6.4 has no pipeline mode (its
// pqxx::pipeline concatenates statements without parameters).
namespace leftfold::internal::store {
namespace {

// Statements sent before the batch waits for their results. Bounds what the client and the
// server buffer (a server blocked writing results we do not read would stall the pipeline).
constexpr size_t kMaxInFlight = 256;

constexpr char kUpsertCheckpoint[] =
    "INSERT INTO leftfold_checkpoints (projector, topic, partition, next_offset) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT (projector, topic, partition) "
    "DO UPDATE SET next_offset = EXCLUDED.next_offset";

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

std::string Trimmed(const char* message) {
  return std::string(absl::StripTrailingAsciiWhitespace(message == nullptr ? "" : message));
}

absl::Status ConnectionError(PGconn* conn, absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(
      "postgres ", what, ": ", Trimmed(conn ? PQerrorMessage(conn) : "no connection")));
}

// An error result: SQLSTATE class 08 is a lost connection (retry); the rest is the statement's.
absl::Status ResultError(const PGresult* r, absl::string_view what, absl::string_view query) {
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  std::string message = Trimmed(PQresultErrorMessage(r));
  if (state != nullptr && absl::StartsWith(state, "08")) {
    return absl::UnavailableError(absl::StrCat("postgres ", what, ": ", message));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("postgres ", what, ": ", message, " [", query, "]"));
}

bool IsOk(const PGresult* r) {
  ExecStatusType s = PQresultStatus(r);
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

SqlResult ToSqlResult(const PGresult* r) {
  SqlResult out;
  const char* affected = PQcmdTuples(const_cast<PGresult*>(r));
  if (affected != nullptr && *affected != '\0')
    (void)absl::SimpleAtoi(affected, &out.affected_rows);
  const int columns = PQnfields(r);
  for (int c = 0; c < columns; ++c) out.columns.push_back(PQfname(r, c));
  const int rows = PQntuples(r);
  out.rows.reserve(rows);
  for (int i = 0; i < rows; ++i) {
    auto& dst = out.rows.emplace_back();
    dst.reserve(columns);
    for (int c = 0; c < columns; ++c) {
      dst.push_back(PQgetisnull(r, i, c) ? std::nullopt
                                         : std::optional<std::string>(std::string(
                                               PQgetvalue(r, i, c), PQgetlength(r, i, c))));
    }
  }
  return out;
}

template <typename It>
std::vector<const char*> Values(It begin, It end) {
  std::vector<const char*> values;  // nullptr is SQL NULL
  for (It p = begin; p != end; ++p) values.push_back(p->value() ? p->value()->c_str() : nullptr);
  return values;
}

// One connection and the statements prepared on it. Used by one thread at a time.
class Session {
 public:
  explicit Session(std::string uri) : uri_(std::move(uri)) {}
  ~Session() {
    if (conn_ != nullptr) PQfinish(conn_);
  }

  // A usable, idle connection: (re)connects, and resets one a failed batch left mid-pipeline or
  // mid-transaction.
  absl::Status Ready() {
    if (conn_ == nullptr) {
      conn_ = PQconnectdb(uri_.c_str());
      // Notices ("relation ... already exists, skipping" from the migrations) are not errors;
      // libpq would print them to stderr.
      PQsetNoticeProcessor(
          conn_, [](void*, const char*) {}, nullptr);
      prepared_.clear();
    } else if (PQstatus(conn_) != CONNECTION_OK || PQpipelineStatus(conn_) != PQ_PIPELINE_OFF ||
               PQtransactionStatus(conn_) != PQTRANS_IDLE) {
      PQreset(conn_);  // server-side prepared statements die with the old session
      prepared_.clear();
    }
    if (PQstatus(conn_) != CONNECTION_OK) return ConnectionError(conn_, "connect");
    return absl::OkStatus();
  }

  // Outside a batch: one statement, one round trip.
  template <typename It>
  absl::StatusOr<SqlResult> ExecDirect(absl::string_view query, It begin, It end) {
    std::vector<const char*> values = Values(begin, end);
    const std::string q(query);
    ResultPtr r(PQexecParams(conn_, q.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0));
    if (r == nullptr) return ConnectionError(conn_, "exec");
    if (!IsOk(r.get())) {
      if (PQstatus(conn_) != CONNECTION_OK) return ConnectionError(conn_, "exec");
      return ResultError(r.get(), "exec", query);
    }
    return ToSqlResult(r.get());
  }

  PGconn* conn() { return conn_; }
  // Query text -> name of its prepared statement on this connection.
  absl::flat_hash_map<std::string, std::string>& prepared() { return prepared_; }
  std::string NextStatementName() { return absl::StrCat("lf_", next_statement_++); }

 private:
  std::string uri_;
  PGconn* conn_ = nullptr;
  absl::flat_hash_map<std::string, std::string> prepared_;
  int64_t next_statement_ = 0;
};

// For the migration: statements run at once, in the caller's transaction.
class DirectSqlView : public SqlView {
 public:
  explicit DirectSqlView(Session& session) : session_(session) {}
  absl::StatusOr<SqlResult> Exec(absl::string_view query,
                                 std::initializer_list<SqlParam> params) override {
    return session_.ExecDirect(query, params.begin(), params.end());
  }
  absl::StatusOr<SqlResult> Exec(absl::string_view query,
                                 const std::vector<SqlParam>& params) override {
    return session_.ExecDirect(query, params.begin(), params.end());
  }

 private:
  Session& session_;
};

// One SQL transaction in pipeline mode: BEGIN, the handlers' statements (prepared once per
// connection, sent without waiting), the checkpoint upserts and COMMIT. Exec waits for the
// results up to its own; Queue waits only every kMaxInFlight statements.
class PgBatch : public Batch, public SqlView {
 public:
  PgBatch(Session& session, const std::string& projector, Watermarks* watermarks)
      : session_(session), conn_(session.conn()), projector_(projector), watermarks_(watermarks) {}

  ~PgBatch() override {
    if (done_) return;
    // Not committed: roll back, and leave the connection idle for the next batch (Ready()
    // resets it if this fails).
    error_ = absl::OkStatus();
    if (SendRaw("ROLLBACK", nullptr, 0, Pending::kControl).ok()) Sync(nullptr).IgnoreError();
    PQexitPipelineMode(conn_);
  }

  absl::Status Start() {
    if (PQenterPipelineMode(conn_) != 1) return ConnectionError(conn_, "enter pipeline mode");
    return SendRaw("BEGIN", nullptr, 0, Pending::kControl);
  }

  View* view() override { return nullptr; }
  SqlView* sql() override { return this; }
  void StartEvent(size_t index) override { event_ = index; }
  std::optional<size_t> failed_event() const override { return failed_event_; }

  absl::StatusOr<SqlResult> Exec(absl::string_view query,
                                 std::initializer_list<SqlParam> params) override {
    return ExecAndWait(query, Values(params.begin(), params.end()));
  }
  absl::StatusOr<SqlResult> Exec(absl::string_view query,
                                 const std::vector<SqlParam>& params) override {
    return ExecAndWait(query, Values(params.begin(), params.end()));
  }
  absl::Status Queue(absl::string_view query, std::initializer_list<SqlParam> params) override {
    return QueueValues(query, Values(params.begin(), params.end()));
  }
  absl::Status Queue(absl::string_view query, const std::vector<SqlParam>& params) override {
    return QueueValues(query, Values(params.begin(), params.end()));
  }

  absl::Status Commit(const Checkpoints& checkpoints) override {
    event_.reset();  // the checkpoint writes belong to no event
    for (const auto& [tp, offset] : checkpoints) {
      const std::string partition = absl::StrCat(tp.partition);
      const std::string next = absl::StrCat(offset);
      if (absl::Status s = SendPrepared(kUpsertCheckpoint, {projector_.c_str(), tp.topic.c_str(),
                                                            partition.c_str(), next.c_str()});
          !s.ok()) {
        return s;
      }
    }
    if (absl::Status s = SendRaw("COMMIT", nullptr, 0, Pending::kCommit); !s.ok()) return s;
    absl::Status s = Sync(nullptr);
    if (!s.ok()) {
      if (commit_sent_unanswered_) {
        return absl::UnknownError(absl::StrCat("postgres commit (outcome unknown): ", s.message()));
      }
      return s;
    }
    done_ = true;
    PQexitPipelineMode(conn_);
    watermarks_->Advance(checkpoints);
    return absl::OkStatus();
  }

 private:
  struct Pending {
    enum Kind { kPrepare, kStatement, kControl, kCommit } kind;
    std::optional<size_t> event;
    std::string text;  // the query (the statement name for kPrepare)
  };

  absl::StatusOr<SqlResult> ExecAndWait(absl::string_view query, std::vector<const char*> values) {
    if (absl::Status s = SendPrepared(query, values); !s.ok()) return s;
    SqlResult result;
    if (absl::Status s = Sync(&result); !s.ok()) return s;
    return result;
  }

  absl::Status QueueValues(absl::string_view query, std::vector<const char*> values) {
    if (absl::Status s = SendPrepared(query, values); !s.ok()) return s;
    if (pending_.size() >= kMaxInFlight) return Sync(nullptr);
    return absl::OkStatus();
  }

  // Prepares the query on first use (by text), then sends its execution.
  absl::Status SendPrepared(absl::string_view query, const std::vector<const char*>& values) {
    if (!error_.ok()) return error_;  // the transaction is lost; the batch will be redone
    auto& prepared = session_.prepared();
    auto it = prepared.find(query);
    if (it == prepared.end()) {
      std::string name = session_.NextStatementName();
      const std::string q(query);
      if (PQsendPrepare(conn_, name.c_str(), q.c_str(), static_cast<int>(values.size()), nullptr) !=
          1) {
        return Fail(ConnectionError(conn_, "prepare"));
      }
      pending_.push_back({Pending::kPrepare, event_, name});
      it = prepared.emplace(q, std::move(name)).first;
    }
    if (PQsendQueryPrepared(conn_, it->second.c_str(), static_cast<int>(values.size()),
                            values.data(), nullptr, nullptr, 0) != 1) {
      return Fail(ConnectionError(conn_, "send"));
    }
    pending_.push_back({Pending::kStatement, event_, std::string(query)});
    return absl::OkStatus();
  }

  absl::Status SendRaw(const char* query, const char* const* values, int n, Pending::Kind kind) {
    if (!error_.ok()) return error_;
    if (PQsendQueryParams(conn_, query, n, nullptr, values, nullptr, nullptr, 0) != 1) {
      return Fail(ConnectionError(conn_, query));
    }
    pending_.push_back({kind, std::nullopt, query});
    if (kind == Pending::kCommit) commit_sent_unanswered_ = true;
    return absl::OkStatus();
  }

  absl::Status Fail(absl::Status s) {
    if (error_.ok()) error_ = s;
    return error_;
  }

  // Ends the pipeline segment and reads every pending result in order. The first error sticks
  // (PostgreSQL aborts the transaction there; later statements come back PIPELINE_ABORTED) and
  // names the event that sent the failed statement. `last`: the last statement's rows.
  absl::Status Sync(SqlResult* last) {
    if (PQpipelineSync(conn_) != 1) return Fail(ConnectionError(conn_, "sync"));
    size_t next = 0;
    size_t nulls = 0;
    for (;;) {
      ResultPtr r(PQgetResult(conn_));
      if (r == nullptr) {
        // A NULL ends each statement's results; more NULLs than statements means a dead
        // connection.
        if (PQstatus(conn_) != CONNECTION_OK || ++nulls > pending_.size() + 1) {
          pending_.clear();
          return Fail(ConnectionError(conn_, "read results"));
        }
        continue;
      }
      const ExecStatusType status = PQresultStatus(r.get());
      if (status == PGRES_PIPELINE_SYNC) break;
      if (next >= pending_.size()) {
        pending_.clear();
        return Fail(absl::InternalError("postgres: more results than statements in a pipeline"));
      }
      const Pending& p = pending_[next++];
      if (p.kind == Pending::kCommit) commit_sent_unanswered_ = false;
      if (IsOk(r.get())) {
        if (p.kind == Pending::kCommit && std::strcmp(PQcmdStatus(r.get()), "COMMIT") != 0) {
          // COMMIT of an aborted transaction answers ROLLBACK without an error.
          Fail(absl::AbortedError("postgres commit: the transaction was rolled back"))
              .IgnoreError();
        }
        if (last != nullptr && next == pending_.size() && p.kind == Pending::kStatement) {
          *last = ToSqlResult(r.get());
        }
        continue;
      }
      if (p.kind == Pending::kPrepare) session_.prepared().erase(QueryOfPrepare(next - 1));
      if (status == PGRES_PIPELINE_ABORTED) continue;  // an earlier error already stuck
      absl::Status s = ResultError(r.get(), p.kind == Pending::kCommit ? "commit" : "exec",
                                   p.kind == Pending::kPrepare ? QueryOfPrepare(next - 1) : p.text);
      if (error_.ok()) {
        error_ = s;
        if (!absl::IsUnavailable(s)) failed_event_ = p.event;
      }
    }
    pending_.clear();
    return error_;
  }

  // A prepare is always followed by its statement, which carries the query text.
  std::string QueryOfPrepare(size_t index) const {
    return index + 1 < pending_.size() ? pending_[index + 1].text : std::string();
  }

  Session& session_;
  PGconn* conn_;
  const std::string& projector_;
  Watermarks* watermarks_;
  std::vector<Pending> pending_;
  std::optional<size_t> event_;
  absl::Status error_;
  std::optional<size_t> failed_event_;
  bool commit_sent_unanswered_ = false;
  bool done_ = false;
};

}  // namespace

struct PgStore::Connection {
  explicit Connection(std::string uri) : session(std::move(uri)) {}
  Session session;
};

PgStore::PgStore() = default;

absl::StatusOr<std::unique_ptr<PgStore>> PgStore::Open(
    const std::string& uri, const std::string& projector,
    const std::function<absl::Status(SqlView&)>& migration) {
  std::unique_ptr<PgStore> store(new PgStore());
  store->projector_ = projector;
  store->conn_ = std::make_unique<Connection>(uri);
  Session& session = store->conn_->session;
  if (absl::Status s = session.Ready(); !s.ok()) return s;
  const SqlParam* none = nullptr;
  auto run = [&](const char* q) { return session.ExecDirect(q, none, none).status(); };
  if (absl::Status s = run("BEGIN"); !s.ok()) return s;
  // Migrations run one at a time per database: concurrent `CREATE TABLE IF NOT EXISTS` of one
  // new table fails in one of the sessions (unique violation in pg_type), so two projectors
  // starting together, or our own checkpoint table on a fresh database, would race. The lock
  // goes with the transaction.
  absl::Status s = run("SELECT pg_advisory_xact_lock(hashtext('leftfold.migrations'))");
  if (s.ok()) {
    s =
        run("CREATE TABLE IF NOT EXISTS leftfold_checkpoints ("
            " projector text NOT NULL, topic text NOT NULL, partition integer NOT NULL,"
            " next_offset bigint NOT NULL, PRIMARY KEY (projector, topic, partition))");
  }
  if (s.ok() && migration) {
    DirectSqlView sql(session);
    s = migration(sql);
    if (!s.ok()) {
      s = absl::Status(s.code(),
                       absl::StrCat("projector ", projector, " migration: ", s.message()));
    }
  }
  if (s.ok()) s = run("COMMIT");
  if (!s.ok()) {
    run("ROLLBACK").IgnoreError();
    return s;
  }
  absl::StatusOr<Checkpoints> checkpoints = store->LoadCheckpoints();
  if (!checkpoints.ok()) return checkpoints.status();
  store->watermarks_.Advance(*checkpoints);
  return store;
}

PgStore::~PgStore() = default;

absl::StatusOr<Checkpoints> PgStore::LoadCheckpoints() {
  Session& session = conn_->session;
  if (absl::Status s = session.Ready(); !s.ok()) return s;
  std::vector<SqlParam> params = {projector_};
  absl::StatusOr<SqlResult> r = session.ExecDirect(
      "SELECT topic, partition, next_offset FROM leftfold_checkpoints WHERE projector = $1",
      params.begin(), params.end());
  if (!r.ok()) return r.status();
  Checkpoints out;
  for (const auto& row : r->rows) {
    int32_t partition = 0;
    int64_t offset = 0;
    if (!row[0] || !row[1] || !row[2] || !absl::SimpleAtoi(*row[1], &partition) ||
        !absl::SimpleAtoi(*row[2], &offset)) {
      return absl::DataLossError(absl::StrCat("postgres: bad checkpoint row of ", projector_));
    }
    out[{*row[0], partition}] = offset;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Batch>> PgStore::Begin() {
  Session& session = conn_->session;
  if (absl::Status s = session.Ready(); !s.ok()) return s;
  auto batch = std::make_unique<PgBatch>(session, projector_, &watermarks_);
  if (absl::Status s = batch->Start(); !s.ok()) return s;
  return std::unique_ptr<Batch>(std::move(batch));
}

}  // namespace leftfold::internal::store
