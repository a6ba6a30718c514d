// The invoice_list view: the invoice's row and its secondary-key rows stay consistent through
// status, customer and total changes, and prefix scans list invoices in the promised order.
#include "invoices/invoice_list.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "invoices/invoice_aggregate.h"
#include "invoices/v1/invoices.pb.h"
#include "leftfold/testing/projector_fixture.h"

namespace invoices {
namespace {

using leftfold::testing::ProjectorFixture;

v1::InvoiceCreated Created(const std::string& customer) {
  v1::InvoiceCreated e;
  e.set_customer(customer);
  e.set_currency("EUR");
  e.set_due_date("2025-01-31");
  return e;
}
v1::LineItemAdded Added(const std::string& id, int64_t quantity, int64_t unit_price,
                        int32_t bp = 0) {
  v1::LineItemAdded e;
  e.mutable_item()->set_id(id);
  e.mutable_item()->set_quantity(quantity);
  e.mutable_item()->set_unit_price(unit_price);
  e.mutable_item()->set_tax_rate_bp(bp);
  return e;
}
v1::LineItemRemoved Removed(const std::string& id) {
  v1::LineItemRemoved e;
  e.set_line_item_id(id);
  return e;
}
v1::CustomerSet CustomerSet(const std::string& customer) {
  v1::CustomerSet e;
  e.set_customer(customer);
  return e;
}
v1::PaymentRecorded Paid(int64_t amount) {
  v1::PaymentRecorded e;
  e.set_amount(amount);
  return e;
}

// An event with a chosen timestamp (the invoice's "created" comes from it).
leftfold::v1::EventEnvelope At(const std::string& id, int64_t version, int64_t unix_seconds,
                               const google::protobuf::Message& event) {
  leftfold::v1::EventEnvelope e;
  e.set_aggregate_type(kInvoiceType);
  e.set_aggregate_id(id);
  e.set_version(version);
  e.mutable_timestamp()->set_seconds(unix_seconds);
  e.mutable_payload()->PackFrom(event);
  return e;
}

// Keys of every row under `prefix`, in order (all pages).
std::vector<std::string> Keys(const ProjectorFixture& fx, const std::string& prefix) {
  std::vector<std::string> keys;
  leftfold::ScanRange range{.prefix = prefix, .limit = 3};
  while (true) {
    absl::StatusOr<leftfold::ScanPage> page = fx.Scan(range);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) return keys;
    for (const leftfold::ViewRow& row : page->rows) keys.push_back(row.key);
    if (page->next_page_token.empty()) return keys;
    range.page_token = page->next_page_token;
  }
}

// The ids of the invoices under `prefix`, in scan order, read from the rows themselves.
std::vector<std::string> Ids(const ProjectorFixture& fx, const std::string& prefix) {
  std::vector<std::string> ids;
  absl::StatusOr<leftfold::ScanPage> page = fx.Scan({.prefix = prefix, .limit = 1000});
  EXPECT_TRUE(page.ok()) << page.status();
  if (!page.ok()) return ids;
  for (const leftfold::ViewRow& row : page->rows) {
    v1::InvoiceSummary summary;
    EXPECT_TRUE(row.To(&summary).ok()) << row.key;
    ids.push_back(summary.id());
  }
  return ids;
}

v1::InvoiceSummary Summary(const ProjectorFixture& fx, const std::string& id) {
  absl::StatusOr<v1::InvoiceSummary> row = fx.Row<v1::InvoiceSummary>(InvoiceKey(id));
  EXPECT_TRUE(row.ok()) << row.status();
  return row.ok() ? *row : v1::InvoiceSummary();
}

constexpr int64_t kJan1 = 1735689600;  // 2025-01-01T00:00:00Z

TEST(InvoiceList, OneRowPerInvoiceWithTotals) {
  ProjectorFixture fx(InvoiceListProjector());
  ASSERT_TRUE(fx.Given(At("inv-1", 1, kJan1, Created("ada"))).ok());
  ASSERT_TRUE(fx.Given("inv-1", Added("books", 2, 1000, 1900)).ok());
  v1::InvoiceSummary row = Summary(fx, "inv-1");
  EXPECT_EQ(row.id(), "inv-1");
  EXPECT_EQ(row.customer(), "ada");
  EXPECT_EQ(row.status(), v1::INVOICE_STATUS_DRAFT);
  EXPECT_EQ(row.created(), "2025-01-01T00:00:00Z");
  EXPECT_EQ(row.subtotal(), 2000);
  EXPECT_EQ(row.tax(), 380);
  EXPECT_EQ(row.total(), 2380);
  EXPECT_EQ(row.line_items(), 1);
  EXPECT_EQ(Keys(fx, "by_status/"),
            std::vector<std::string>{"by_status/DRAFT/0000000000000002380/inv-1"});
  EXPECT_EQ(Keys(fx, "by_customer/"),
            std::vector<std::string>{"by_customer/ada/2025-01-01T00:00:00Z/inv-1"});
  EXPECT_EQ(Keys(fx, "by_total/"), std::vector<std::string>{"by_total/0000000000000002380/inv-1"});
  EXPECT_EQ(Keys(fx, "by_date/"), std::vector<std::string>{"by_date/2025-01-01T00:00:00Z/inv-1"});
  EXPECT_EQ(Keys(fx, LinePrefix("inv-1")), std::vector<std::string>{"line/inv-1/books"});
}

TEST(InvoiceList, StatusChangeMovesTheIndexRow) {
  ProjectorFixture fx(InvoiceListProjector());
  ASSERT_TRUE(fx.Given("inv-1", Created("ada")).ok());
  ASSERT_TRUE(fx.Given("inv-1", Added("books", 1, 1000)).ok());
  EXPECT_EQ(Ids(fx, ByStatusPrefix(v1::INVOICE_STATUS_DRAFT)), std::vector<std::string>{"inv-1"});

  ASSERT_TRUE(fx.Given("inv-1", v1::InvoiceSent()).ok());
  EXPECT_TRUE(Keys(fx, ByStatusPrefix(v1::INVOICE_STATUS_DRAFT)).empty()) << "old row left";
  EXPECT_EQ(Keys(fx, "by_status/"),
            std::vector<std::string>{"by_status/SENT/0000000000000001000/inv-1"});
  // The index rows carry the new row, not a stale copy.
  absl::StatusOr<v1::InvoiceSummary> indexed =
      fx.Row<v1::InvoiceSummary>("by_status/SENT/0000000000000001000/inv-1");
  ASSERT_TRUE(indexed.ok()) << indexed.status();
  EXPECT_EQ(indexed->status(), v1::INVOICE_STATUS_SENT);

  ASSERT_TRUE(fx.Given("inv-1", Paid(400)).ok());
  EXPECT_EQ(Ids(fx, ByStatusPrefix(v1::INVOICE_STATUS_SENT)), std::vector<std::string>{"inv-1"});
  EXPECT_EQ(Summary(fx, "inv-1").paid(), 400);
  ASSERT_TRUE(fx.Given("inv-1", Paid(600)).ok());
  EXPECT_TRUE(Keys(fx, ByStatusPrefix(v1::INVOICE_STATUS_SENT)).empty());
  EXPECT_EQ(Keys(fx, "by_status/"),
            std::vector<std::string>{"by_status/PAID/0000000000000001000/inv-1"});
  EXPECT_EQ(Summary(fx, "inv-1").status(), v1::INVOICE_STATUS_PAID);
}

TEST(InvoiceList, TotalAndCustomerChangesRewriteTheirIndexRows) {
  ProjectorFixture fx(InvoiceListProjector());
  ASSERT_TRUE(fx.Given(At("inv-1", 1, kJan1, Created(""))).ok());
  EXPECT_TRUE(Keys(fx, "by_customer/").empty()) << "no customer yet, no customer row";
  ASSERT_TRUE(fx.Given(At("inv-1", 2, kJan1, CustomerSet("ada"))).ok());
  EXPECT_EQ(Ids(fx, ByCustomerPrefix("ada")), std::vector<std::string>{"inv-1"});
  ASSERT_TRUE(fx.Given(At("inv-1", 3, kJan1, CustomerSet("bob"))).ok());
  EXPECT_TRUE(Keys(fx, ByCustomerPrefix("ada")).empty()) << "old customer row left";
  EXPECT_EQ(Ids(fx, ByCustomerPrefix("bob")), std::vector<std::string>{"inv-1"});

  ASSERT_TRUE(fx.Given(At("inv-1", 4, kJan1, Added("a", 3, 333, 1900))).ok());  // 999 + 190
  ASSERT_TRUE(fx.Given(At("inv-1", 5, kJan1, Added("b", 1, 5, 1000))).ok());    // 5 + 1
  EXPECT_EQ(Keys(fx, kByTotalPrefix),
            std::vector<std::string>{"by_total/0000000000000001195/inv-1"});
  ASSERT_TRUE(fx.Given(At("inv-1", 6, kJan1, Removed("a"))).ok());
  EXPECT_EQ(Keys(fx, kByTotalPrefix),
            std::vector<std::string>{"by_total/0000000000000000006/inv-1"});
  EXPECT_EQ(Keys(fx, "by_status/"),
            std::vector<std::string>{"by_status/DRAFT/0000000000000000006/inv-1"});
  EXPECT_EQ(Keys(fx, LinePrefix("inv-1")), std::vector<std::string>{"line/inv-1/b"});
  v1::InvoiceSummary row = Summary(fx, "inv-1");
  EXPECT_EQ(row.subtotal(), 5);
  EXPECT_EQ(row.tax(), 1);
  EXPECT_EQ(row.line_items(), 1);
}

TEST(InvoiceList, ScansAreSortedByTotalAndByDate) {
  ProjectorFixture fx(InvoiceListProjector());
  // Created in the order small, big, middle; totals 900, 10000, 5000 (unpadded, "900" > "10000").
  ASSERT_TRUE(fx.Given(At("small", 1, kJan1 + 10, Created("ada"))).ok());
  ASSERT_TRUE(fx.Given(At("big", 1, kJan1 + 20, Created("ada"))).ok());
  ASSERT_TRUE(fx.Given(At("middle", 1, kJan1 + 30, Created("bob"))).ok());
  ASSERT_TRUE(fx.Given(At("small", 2, kJan1, Added("x", 1, 900))).ok());
  ASSERT_TRUE(fx.Given(At("big", 2, kJan1, Added("x", 1, 10000))).ok());
  ASSERT_TRUE(fx.Given(At("middle", 2, kJan1, Added("x", 1, 5000))).ok());

  EXPECT_EQ(Ids(fx, kByTotalPrefix), (std::vector<std::string>{"small", "middle", "big"}));
  EXPECT_EQ(Ids(fx, ByStatusPrefix(v1::INVOICE_STATUS_DRAFT)),
            (std::vector<std::string>{"small", "middle", "big"}));
  EXPECT_EQ(Ids(fx, kByDatePrefix), (std::vector<std::string>{"small", "big", "middle"}));
  EXPECT_EQ(Ids(fx, ByCustomerPrefix("ada")), (std::vector<std::string>{"small", "big"}));
  EXPECT_EQ(Ids(fx, ByCustomerPrefix("bob")), (std::vector<std::string>{"middle"}));
}

TEST(InvoiceList, SlashesInCustomersAndIdsAreEscaped) {
  ProjectorFixture fx(InvoiceListProjector());
  ASSERT_TRUE(fx.Given("inv/1", Created("a/b")).ok());
  ASSERT_TRUE(fx.Given("inv-2", Created("a")).ok());
  EXPECT_EQ(Ids(fx, ByCustomerPrefix("a")), std::vector<std::string>{"inv-2"});
  EXPECT_EQ(Ids(fx, ByCustomerPrefix("a/b")), std::vector<std::string>{"inv/1"});
  EXPECT_EQ(Summary(fx, "inv/1").customer(), "a/b");
  EXPECT_EQ(InvoiceKey("inv/1"), "invoice/inv%2F1");
}

// Random command sequences run through the aggregate; its events feed the projector. After each
// event the view's row equals the aggregate's state, and every index has exactly one row per
// invoice (no stale rows survive any change).
TEST(InvoiceList, MatchesTheAggregateAndLeavesNoStaleIndexRows) {
  leftfold::AggregateDefinition def = InvoiceAggregate();
  ProjectorFixture fx(InvoiceListProjector());
  std::mt19937 rng(11);
  constexpr int kInvoices = 40;
  std::vector<std::unique_ptr<google::protobuf::Message>> states;
  std::vector<int64_t> versions(kInvoices, 0);
  for (int i = 0; i < kInvoices; ++i) states.push_back(def.NewState());
  int accepted = 0;
  for (int step = 0; step < 4000; ++step) {
    int i = static_cast<int>(rng() % kInvoices);
    std::string id = absl::StrCat("inv-", i);
    const auto& state = static_cast<const v1::Invoice&>(*states[i]);
    leftfold::v1::CommandEnvelope command;
    command.set_aggregate_id(id);
    command.set_command_id(absl::StrCat("c", step));
    switch (rng() % 7) {
      case 0: {
        v1::CreateInvoice c;
        c.set_currency("EUR");
        c.set_due_date("2025-02-28");
        if (rng() % 2) c.set_customer(absl::StrCat("cust-", rng() % 3));
        command.mutable_payload()->PackFrom(c);
        break;
      }
      case 1:
      case 2: {
        v1::AddLineItem c;
        c.mutable_item()->set_id(absl::StrCat("l", rng() % 5));
        c.mutable_item()->set_quantity(1 + rng() % 4);
        c.mutable_item()->set_unit_price(1 + rng() % 10000);
        c.mutable_item()->set_tax_rate_bp(static_cast<int32_t>(rng() % 2500));
        command.mutable_payload()->PackFrom(c);
        break;
      }
      case 3: {
        v1::RemoveLineItem c;
        c.set_line_item_id(absl::StrCat("l", rng() % 5));
        command.mutable_payload()->PackFrom(c);
        break;
      }
      case 4: {
        v1::SetCustomer c;
        c.set_customer(absl::StrCat("cust-", rng() % 3));
        command.mutable_payload()->PackFrom(c);
        break;
      }
      case 5:
        command.mutable_payload()->PackFrom(v1::SendInvoice());
        break;
      default: {
        v1::RecordPayment c;
        int64_t outstanding = state.total() - state.paid();
        c.set_amount(outstanding <= 1 ? 1 : 1 + static_cast<int64_t>(rng() % outstanding));
        command.mutable_payload()->PackFrom(c);
        break;
      }
    }
    leftfold::DecideResult result = def.Decide(state, command, leftfold::Version(versions[i]));
    if (result.kind != leftfold::DecideResult::Kind::kAccepted) {
      ASSERT_EQ(result.kind, leftfold::DecideResult::Kind::kRejected) << result.status;
      continue;
    }
    ++accepted;
    for (const google::protobuf::Any& event : result.events) {
      leftfold::v1::EventEnvelope envelope;
      envelope.set_aggregate_type(kInvoiceType);
      envelope.set_aggregate_id(id);
      envelope.set_version(++versions[i]);
      envelope.mutable_timestamp()->set_seconds(kJan1 + step);
      *envelope.mutable_payload() = event;
      ASSERT_TRUE(fx.Given(envelope).ok());
    }
    states[i] = std::move(result.new_state);
    const auto& after = static_cast<const v1::Invoice&>(*states[i]);
    v1::InvoiceSummary row = Summary(fx, id);
    ASSERT_EQ(row.status(), after.status()) << id << " step " << step;
    ASSERT_EQ(row.customer(), after.customer());
    ASSERT_EQ(row.subtotal(), after.subtotal());
    ASSERT_EQ(row.tax(), after.tax());
    ASSERT_EQ(row.total(), after.total());
    ASSERT_EQ(row.paid(), after.paid());
    ASSERT_EQ(row.line_items(), after.line_items_size());
    ASSERT_EQ(Keys(fx, LinePrefix(id)).size(), static_cast<size_t>(after.line_items_size()));
  }
  EXPECT_GT(accepted, 300);
  int created = 0;
  int with_customer = 0;
  std::vector<int> by_status(4, 0);
  for (const auto& state : states) {
    const auto& invoice = static_cast<const v1::Invoice&>(*state);
    if (invoice.status() == v1::INVOICE_STATUS_UNSPECIFIED) continue;
    ++created;
    if (!invoice.customer().empty()) ++with_customer;
    ++by_status[invoice.status()];
  }
  EXPECT_GT(by_status[v1::INVOICE_STATUS_PAID], 0) << "the walk should reach PAID";
  EXPECT_EQ(Keys(fx, kByDatePrefix).size(), static_cast<size_t>(created));
  EXPECT_EQ(Keys(fx, kByTotalPrefix).size(), static_cast<size_t>(created));
  EXPECT_EQ(Keys(fx, "by_customer/").size(), static_cast<size_t>(with_customer));
  EXPECT_EQ(Keys(fx, "by_status/").size(), static_cast<size_t>(created));
  for (v1::InvoiceStatus status :
       {v1::INVOICE_STATUS_DRAFT, v1::INVOICE_STATUS_SENT, v1::INVOICE_STATUS_PAID}) {
    EXPECT_EQ(Keys(fx, ByStatusPrefix(status)).size(), static_cast<size_t>(by_status[status]))
        << StatusName(status);
  }
}

}  // namespace
}  // namespace invoices
