// The invoices_sql projector, run by the real ProjectorRuntime on the embedded log, writing the
// real PostgreSQL: the events of a few invoices (made by the aggregate's own decide) end up as
// plain rows a user queries with SQL, and a restarted projector applies nothing twice.
#include "invoices/invoices_sql.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "invoices/invoice_aggregate.h"
#include "invoices/v1/invoices.pb.h"
#include "leftfold/projector.h"
#include "leftfold/transport.h"
#include "pqxx/pqxx"
#include "projection/runner.h"
#include "support/test_env.h"
#include "topology/topics.h"
#include "unit/projection/projection_test_util.h"

namespace invoices {
namespace {

std::string PgUri() {
  const char* uri = std::getenv("LEFTFOLD_TEST_PG");
  return uri == nullptr ? "" : uri;
}

// `uri` with its database name replaced ("postgresql://u@h:5432/db?x" -> ".../<database>?x").
std::string WithDatabase(const std::string& uri, const std::string& database) {
  size_t query = uri.find('?');
  std::string base = uri.substr(0, query);
  std::string rest = query == std::string::npos ? "" : uri.substr(query);
  size_t authority = base.find("://");
  size_t slash = base.find('/', authority == std::string::npos ? 0 : authority + 3);
  if (slash != std::string::npos) base.resize(slash);
  return absl::StrCat(base, "/", database, rest);
}

// Runs commands through the aggregate's decide, as the processor would, and keeps the events to
// produce, in order, as envelopes.
class InvoiceBook {
 public:
  void Run(const std::string& id, const google::protobuf::Message& command) {
    leftfold::v1::CommandEnvelope envelope;
    envelope.set_aggregate_id(id);
    envelope.set_command_id(absl::StrCat("cmd-", ++commands_));
    envelope.mutable_payload()->PackFrom(command);
    auto& state = states_[id];
    if (state == nullptr) state = definition_.NewState();
    leftfold::DecideResult result =
        definition_.Decide(*state, envelope, leftfold::Version(versions_[id]));
    ASSERT_EQ(result.kind, leftfold::DecideResult::Kind::kAccepted) << id << ": " << result.status;
    for (const google::protobuf::Any& event : result.events) {
      leftfold::v1::EventEnvelope e;
      e.set_aggregate_type(kInvoiceType);
      e.set_aggregate_id(id);
      e.set_version(++versions_[id]);
      e.set_command_id(envelope.command_id());
      e.mutable_timestamp()->set_seconds(1735689600 + commands_);  // 2025-01-01 + n seconds
      *e.mutable_payload() = event;
      pending_.emplace_back(id, e.SerializeAsString());
    }
    state = std::move(result.new_state);
  }
  // Produces the pending events to the events topic; returns where they landed.
  std::vector<leftfold::v1::Position> Produce(leftfold::Transport& transport) {
    auto positions = leftfold::testing::ProduceRaw(
        transport.log_internal(), leftfold::internal::TopicsFor("", kInvoiceType).events, pending_);
    EXPECT_TRUE(positions.ok()) << positions.status();
    events_ += static_cast<int64_t>(pending_.size());
    pending_.clear();
    return positions.ok() ? *positions : std::vector<leftfold::v1::Position>{};
  }
  const v1::Invoice& State(const std::string& id) {
    return static_cast<const v1::Invoice&>(*states_.at(id));
  }
  int64_t Version(const std::string& id) { return versions_[id]; }
  int64_t events() const { return events_; }

 private:
  leftfold::AggregateDefinition definition_ = InvoiceAggregate();
  std::map<std::string, std::unique_ptr<google::protobuf::Message>> states_;
  std::map<std::string, int64_t> versions_;
  std::vector<std::pair<std::string, std::string>> pending_;
  int commands_ = 0;
  int64_t events_ = 0;
};

v1::CreateInvoice Create(const std::string& customer) {
  v1::CreateInvoice c;
  c.set_customer(customer);
  c.set_currency("EUR");
  c.set_due_date("2025-03-31");
  return c;
}
v1::AddLineItem Add(const std::string& id, int64_t quantity, int64_t unit_price, int32_t bp) {
  v1::AddLineItem c;
  c.mutable_item()->set_id(id);
  c.mutable_item()->set_description("item " + id);
  c.mutable_item()->set_quantity(quantity);
  c.mutable_item()->set_unit_price(unit_price);
  c.mutable_item()->set_tax_rate_bp(bp);
  return c;
}
v1::RemoveLineItem Remove(const std::string& id) {
  v1::RemoveLineItem c;
  c.set_line_item_id(id);
  return c;
}
v1::SetCustomer SetCustomerTo(const std::string& customer) {
  v1::SetCustomer c;
  c.set_customer(customer);
  return c;
}
v1::RecordPayment Pay(int64_t amount) {
  v1::RecordPayment c;
  c.set_amount(amount);
  return c;
}

class InvoicesSqlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(PgUri().empty()) << "LEFTFOLD_TEST_PG is not set (tools/test starts PostgreSQL)";
    // A database of its own: the projector's tables and checkpoint rows have fixed names.
    database_ = absl::StrReplaceAll(leftfold::testing::UniqueName("invoices_sql"), {{"-", "_"}});
    {
      pqxx::connection admin(PgUri());
      pqxx::nontransaction tx(admin);
      tx.exec("CREATE DATABASE " + tx.quote_name(database_));
    }
    uri_ = WithDatabase(PgUri(), database_);
    dir_ = leftfold::testing::MakeTempDir("invoices_sql");
    auto transport = leftfold::Transport::Open({.embedded_dir = dir_ + "/log", .partitions = 3});
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
    ASSERT_TRUE(leftfold::internal::EnsureTopics(transport_->log_internal().admin(),
                                                 leftfold::internal::TopicsFor("", kInvoiceType), 3)
                    .ok());
  }
  void TearDown() override {
    transport_.reset();
    std::filesystem::remove_all(dir_);
    if (database_.empty() || PgUri().empty()) return;
    try {
      pqxx::connection admin(PgUri());
      pqxx::nontransaction tx(admin);
      tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(database_) + " WITH (FORCE)");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cannot drop " << database_ << ": " << e.what();
    }
  }

  std::unique_ptr<leftfold::ProjectorRuntime> Start() {
    auto runtime = leftfold::ProjectorRuntime::Start(transport_, InvoicesSqlProjector(),
                                                     {.postgres_uri = uri_, .max_batch = 4});
    EXPECT_TRUE(runtime.ok()) << runtime.status();
    return runtime.ok() ? *std::move(runtime) : nullptr;
  }

  // What a user does: plain SQL on the tables.
  pqxx::result Query(const std::string& sql) {
    pqxx::connection c(uri_);
    pqxx::work tx(c);
    pqxx::result r = tx.exec(sql);
    tx.commit();
    return r;
  }

  // Checks the invoices row against the aggregate's state, and its line_items rows.
  void ExpectMatches(InvoiceBook& book, const std::string& id) {
    const v1::Invoice& state = book.State(id);
    pqxx::connection c(uri_);
    pqxx::work tx(c);
    pqxx::result r = tx.exec_params(
        "SELECT COALESCE(customer, ''), status, subtotal, tax, total, paid, version,"
        " (SELECT COUNT(*) FROM line_items WHERE invoice_id = $1),"
        " (SELECT COALESCE(SUM(quantity * unit_price), 0) FROM line_items WHERE invoice_id = $1)"
        " FROM invoices WHERE id = $1",
        id);
    ASSERT_EQ(r.size(), 1u) << id;
    EXPECT_EQ(r[0][0].as<std::string>(), state.customer()) << id;
    EXPECT_EQ(r[0][1].as<std::string>(), std::string(StatusName(state.status()))) << id;
    EXPECT_EQ(r[0][2].as<int64_t>(), state.subtotal()) << id;
    EXPECT_EQ(r[0][3].as<int64_t>(), state.tax()) << id;
    EXPECT_EQ(r[0][4].as<int64_t>(), state.total()) << id;
    EXPECT_EQ(r[0][5].as<int64_t>(), state.paid()) << id;
    EXPECT_EQ(r[0][6].as<int64_t>(), book.Version(id)) << id;
    EXPECT_EQ(r[0][7].as<int64_t>(), state.line_items_size()) << id;
    EXPECT_EQ(r[0][8].as<int64_t>(), state.subtotal()) << id;
  }

  std::string database_, uri_, dir_;
  std::shared_ptr<leftfold::Transport> transport_;
};

TEST_F(InvoicesSqlTest, TablesFollowTheEventsAndARestartAppliesNothingTwice) {
  InvoiceBook book;
  // inv-1: 2 x 10.00 at 19% + 1 x 5.00 at 0% = 28.80, sent to ada, partly paid.
  book.Run("inv-1", Create("ada"));
  book.Run("inv-1", Add("books", 2, 1000, 1900));
  book.Run("inv-1", Add("stamps", 1, 500, 0));
  book.Run("inv-1", v1::SendInvoice());
  book.Run("inv-1", Pay(1000));
  // inv-2: customer set later, a line removed, paid in full: 3 x 3.33 at 19% = 11.89.
  book.Run("inv-2", Create(""));
  book.Run("inv-2", Add("a", 3, 333, 1900));
  book.Run("inv-2", Add("b", 1, 99, 700));
  book.Run("inv-2", Remove("b"));
  book.Run("inv-2", SetCustomerTo("bob"));
  book.Run("inv-2", v1::SendInvoice());
  book.Run("inv-2", Pay(1189));
  // inv-3: a draft of ada's.
  book.Run("inv-3", Create("ada"));
  book.Run("inv-3", Add("x", 1, 250, 1000));
  if (HasFatalFailure()) return;
  std::vector<leftfold::v1::Position> first = book.Produce(*transport_);
  ASSERT_EQ(first.size(), 14u);

  int64_t applied_first = 0;
  {
    std::unique_ptr<leftfold::ProjectorRuntime> runtime = Start();
    ASSERT_NE(runtime, nullptr);
    absl::Status waited = runtime->WaitFor(first, absl::Now() + absl::Seconds(60));
    ASSERT_TRUE(waited.ok()) << waited;
    applied_first = runtime->runner_internal().events_applied();
    ASSERT_TRUE(runtime->Stop().ok());
  }
  EXPECT_EQ(applied_first, 14);
  for (const char* id : {"inv-1", "inv-2", "inv-3"}) ExpectMatches(book, id);

  // The query the projector's header shows: what each customer still owes.
  pqxx::result owed = Query(
      "SELECT customer, SUM(total - paid) AS outstanding FROM invoices WHERE status = 'SENT'"
      " GROUP BY customer ORDER BY outstanding DESC");
  ASSERT_EQ(owed.size(), 1u);
  EXPECT_EQ(owed[0][0].as<std::string>(), "ada");
  EXPECT_EQ(owed[0][1].as<int64_t>(), 2880 - 1000);
  pqxx::result lines = Query(
      "SELECT id, description, quantity, unit_price, tax_rate_bp, net, tax FROM line_items"
      " WHERE invoice_id = 'inv-1' ORDER BY id");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0][0].as<std::string>(), "books");
  EXPECT_EQ(lines[0][1].as<std::string>(), "item books");
  EXPECT_EQ(lines[0][5].as<int64_t>(), 2000);
  EXPECT_EQ(lines[0][6].as<int64_t>(), 380);
  EXPECT_EQ(lines[1][0].as<std::string>(), "stamps");
  pqxx::result statuses =
      Query("SELECT status, COUNT(*), SUM(total) FROM invoices GROUP BY status ORDER BY status");
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_EQ(statuses[0][0].as<std::string>(), "DRAFT");
  EXPECT_EQ(statuses[0][2].as<int64_t>(), 275);  // 2.50 + 0.25 tax
  EXPECT_EQ(statuses[1][0].as<std::string>(), "PAID");
  EXPECT_EQ(statuses[1][2].as<int64_t>(), 1189);
  EXPECT_EQ(statuses[2][0].as<std::string>(), "SENT");
  EXPECT_EQ(statuses[2][2].as<int64_t>(), 2880);
  pqxx::result paid_at = Query(
      "SELECT paid_at IS NOT NULL, sent_at IS NOT NULL FROM invoices"
      " WHERE id = 'inv-2'");
  EXPECT_TRUE(paid_at[0][0].as<bool>());
  EXPECT_TRUE(paid_at[0][1].as<bool>());

  // More events while the projector is down; the restarted one (migration again, checkpoints
  // from the table) must apply exactly these. Applying a payment twice would show in `paid`,
  // a line item twice would fail on the primary key.
  book.Run("inv-1", Pay(1880));
  book.Run("inv-3", Add("y", 2, 1000, 0));
  book.Run("inv-3", SetCustomerTo("cy"));
  book.Run("inv-4", Create("ada"));
  if (HasFatalFailure()) return;
  std::vector<leftfold::v1::Position> second = book.Produce(*transport_);
  ASSERT_EQ(second.size(), 4u);
  std::unique_ptr<leftfold::ProjectorRuntime> runtime = Start();
  ASSERT_NE(runtime, nullptr);
  absl::Status waited = runtime->WaitFor(second, absl::Now() + absl::Seconds(60));
  ASSERT_TRUE(waited.ok()) << waited;
  EXPECT_EQ(runtime->runner_internal().events_applied(), 4);
  ASSERT_TRUE(runtime->Stop().ok());
  for (const char* id : {"inv-1", "inv-2", "inv-3", "inv-4"}) ExpectMatches(book, id);
  EXPECT_EQ(book.State("inv-1").status(), v1::INVOICE_STATUS_PAID);
  pqxx::result checkpoints = Query(
      "SELECT COALESCE(SUM(next_offset), 0) FROM leftfold_checkpoints"
      " WHERE projector = 'invoices_sql'");
  EXPECT_EQ(checkpoints[0][0].as<int64_t>(), book.events());
  pqxx::result line_count = Query("SELECT COUNT(*) FROM line_items");
  EXPECT_EQ(line_count[0][0].as<int64_t>(), 2 + 1 + 2);
}

}  // namespace
}  // namespace invoices
