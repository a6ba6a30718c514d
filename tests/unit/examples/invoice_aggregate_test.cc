// The invoices aggregate's rules (services/invoices/invoice_aggregate.h), one fixture test each.
#include "invoices/invoice_aggregate.h"

#include <string>

#include "gtest/gtest.h"
#include "invoices/v1/invoices.pb.h"
#include "leftfold/testing/aggregate_fixture.h"

namespace invoices {
namespace {

using absl::StatusCode;
using leftfold::testing::AggregateFixture;

v1::InvoiceCreated Created(const std::string& customer = "ada") {
  v1::InvoiceCreated e;
  e.set_customer(customer);
  e.set_currency("EUR");
  e.set_due_date("2025-01-31");
  return e;
}
v1::LineItem Item(const std::string& id, int64_t quantity, int64_t unit_price, int32_t bp) {
  v1::LineItem item;
  item.set_id(id);
  item.set_description("item " + id);
  item.set_quantity(quantity);
  item.set_unit_price(unit_price);
  item.set_tax_rate_bp(bp);
  return item;
}
v1::LineItemAdded Added(const v1::LineItem& item) {
  v1::LineItemAdded e;
  *e.mutable_item() = item;
  return e;
}
v1::AddLineItem Add(const v1::LineItem& item) {
  v1::AddLineItem c;
  *c.mutable_item() = item;
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
v1::PaymentRecorded Paid(int64_t amount) {
  v1::PaymentRecorded e;
  e.set_amount(amount);
  return e;
}

// 2 x 10.00 at 19%: 20.00 + 3.80 = 23.80.
const v1::LineItem kBooks = Item("books", 2, 1000, 1900);
// 1 x 5.00 at 0%.
const v1::LineItem kStamps = Item("stamps", 1, 500, 0);

class InvoiceTest : public ::testing::Test {
 protected:
  AggregateFixture f{InvoiceAggregate()};
};

TEST_F(InvoiceTest, DefinitionIsValid) {
  absl::StatusOr<leftfold::AggregateDefinition> def = InvoiceAggregate().Build();
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->type(), "invoices.invoice");
  EXPECT_EQ(def->CommandTypes().size(), 6u);
  EXPECT_EQ(def->EventTypes().size(), 6u);
}

TEST_F(InvoiceTest, CreateEmitsCreatedAndMakesADraft) {
  v1::CreateInvoice create;
  create.set_customer("ada");
  create.set_currency("EUR");
  create.set_due_date("2025-01-31");
  v1::Invoice draft;
  draft.set_status(v1::INVOICE_STATUS_DRAFT);
  draft.set_customer("ada");
  draft.set_currency("EUR");
  draft.set_due_date("2025-01-31");
  f.Given().When(create).ThenEmits(Created("ada")).ThenState(draft);

  create.clear_customer();  // optional at creation
  f.Given().When(create).ThenEmits(Created(""));
}

TEST_F(InvoiceTest, CreateTwiceIsAlreadyExists) {
  v1::CreateInvoice create;
  create.set_currency("EUR");
  create.set_due_date("2025-01-31");
  f.Given(Created()).When(create).ThenRejects(StatusCode::kAlreadyExists, "already exists");
}

TEST_F(InvoiceTest, CreateValidatesCurrencyAndDueDate) {
  v1::CreateInvoice create;
  create.set_due_date("2025-01-31");
  for (const char* currency : {"", "eur", "EURO", "E1R"}) {
    create.set_currency(currency);
    f.Given().When(create).ThenRejects(StatusCode::kInvalidArgument, "currency");
  }
  create.set_currency("USD");
  for (const char* date : {"", "2025-13-01", "31.01.2025", "2025-1-31", "2025-02-30x"}) {
    create.set_due_date(date);
    f.Given().When(create).ThenRejects(StatusCode::kInvalidArgument, "due date");
  }
}

TEST_F(InvoiceTest, EveryOtherCommandNeedsAnInvoice) {
  f.Given().When(Add(kBooks)).ThenRejects(StatusCode::kNotFound, "invoice not found");
  f.Given().When(Remove("books")).ThenRejects(StatusCode::kNotFound, "invoice not found");
  f.Given().When(SetCustomerTo("bob")).ThenRejects(StatusCode::kNotFound, "invoice not found");
  f.Given().When(v1::SendInvoice()).ThenRejects(StatusCode::kNotFound, "invoice not found");
  f.Given().When(Pay(1)).ThenRejects(StatusCode::kNotFound, "invoice not found");
}

TEST_F(InvoiceTest, ApplyComputesTotalsAndTaxRoundedHalfUp) {
  // 3 x 3.33 at 19%: net 9.99, tax 1.8981 -> 1.90. 1 x 0.05 at 10%: tax 0.005 -> 0.01.
  v1::Invoice expected;
  expected.set_status(v1::INVOICE_STATUS_DRAFT);
  expected.set_customer("ada");
  expected.set_currency("EUR");
  expected.set_due_date("2025-01-31");
  *expected.add_line_items() = Item("a", 3, 333, 1900);
  *expected.add_line_items() = Item("b", 1, 5, 1000);
  expected.set_subtotal(999 + 5);
  expected.set_tax(190 + 1);
  expected.set_total(999 + 5 + 190 + 1);
  f.Given(Created(), Added(Item("a", 3, 333, 1900)))
      .When(Add(Item("b", 1, 5, 1000)))
      .ThenEmits(Added(Item("b", 1, 5, 1000)))
      .ThenState(expected);
  EXPECT_EQ(AmountsOf(Item("x", 1, 250, 1000)).tax, 25);
  EXPECT_EQ(AmountsOf(Item("x", 1, 15, 1000)).tax, 2);  // 1.5 -> 2
  EXPECT_EQ(AmountsOf(Item("x", 1, 14, 1000)).tax, 1);  // 1.4 -> 1
}

TEST_F(InvoiceTest, AddLineItemValidatesTheItem) {
  auto s = f.Given(Created());
  s.When(Add(Item("", 1, 100, 0))).ThenRejects(StatusCode::kInvalidArgument, "id is required");
  s.When(Add(Item("x", 0, 100, 0))).ThenRejects(StatusCode::kInvalidArgument, "quantity");
  s.When(Add(Item("x", -1, 100, 0))).ThenRejects(StatusCode::kInvalidArgument, "quantity");
  s.When(Add(Item("x", 1, 0, 0))).ThenRejects(StatusCode::kInvalidArgument, "unit price");
  s.When(Add(Item("x", 1, 100, -1))).ThenRejects(StatusCode::kInvalidArgument, "tax rate");
  s.When(Add(Item("x", 1, 100, 10001))).ThenRejects(StatusCode::kInvalidArgument, "tax rate");
  s.When(Add(Item("x", 1, 100, 10000))).ThenEmits(Added(Item("x", 1, 100, 10000)));
  s.When(Add(Item("x", 1'000'000, kMaxLineAmount, 0)))
      .ThenRejects(StatusCode::kInvalidArgument, "line amount exceeds");
  s.When(Add(Item("x", 1, kMaxLineAmount, 10000)))
      .ThenEmits(Added(Item("x", 1, kMaxLineAmount, 10000)));
}

TEST_F(InvoiceTest, AddLineItemTwiceIsAlreadyExists) {
  f.Given(Created(), Added(kBooks))
      .When(Add(kBooks))
      .ThenRejects(StatusCode::kAlreadyExists, "line item books already exists");
}

TEST_F(InvoiceTest, RemoveLineItemLowersTheTotal) {
  v1::Invoice expected;
  expected.set_status(v1::INVOICE_STATUS_DRAFT);
  expected.set_customer("ada");
  expected.set_currency("EUR");
  expected.set_due_date("2025-01-31");
  *expected.add_line_items() = kStamps;
  expected.set_subtotal(500);
  expected.set_total(500);
  v1::LineItemRemoved removed;
  removed.set_line_item_id("books");
  f.Given(Created(), Added(kBooks), Added(kStamps))
      .When(Remove("books"))
      .ThenEmits(removed)
      .ThenState(expected);
}

TEST_F(InvoiceTest, RemoveMissingLineItemIsNotFound) {
  f.Given(Created(), Added(kBooks))
      .When(Remove("stamps"))
      .ThenRejects(StatusCode::kNotFound, "line item stamps not found");
  v1::LineItemRemoved removed;
  removed.set_line_item_id("books");
  f.Given(Created(), Added(kBooks), removed)
      .When(Remove("books"))
      .ThenRejects(StatusCode::kNotFound, "line item books not found");
}

TEST_F(InvoiceTest, SetCustomer) {
  v1::CustomerSet set;
  set.set_customer("bob");
  f.Given(Created("")).When(SetCustomerTo("bob")).ThenEmits(set);
  f.Given(Created("ada")).When(SetCustomerTo("bob")).ThenEmits(set);
  f.Given(Created("bob")).When(SetCustomerTo("bob")).ThenEmits();  // nothing changes
  f.Given(Created())
      .When(SetCustomerTo(""))
      .ThenRejects(StatusCode::kInvalidArgument, "customer is required");
}

TEST_F(InvoiceTest, SendNeedsLineItemsAndACustomer) {
  f.Given(Created("ada"))
      .When(v1::SendInvoice())
      .ThenRejects(StatusCode::kFailedPrecondition, "without line items");
  f.Given(Created(""), Added(kBooks))
      .When(v1::SendInvoice())
      .ThenRejects(StatusCode::kFailedPrecondition, "without a customer");
  v1::CustomerSet set;
  set.set_customer("bob");
  auto outcome = f.Given(Created(""), Added(kBooks), set).When(v1::SendInvoice());
  outcome.ThenEmits(v1::InvoiceSent());
  ASSERT_NE(outcome.result().new_state, nullptr);
  const auto& sent = static_cast<const v1::Invoice&>(*outcome.result().new_state);
  EXPECT_EQ(sent.status(), v1::INVOICE_STATUS_SENT);
  EXPECT_EQ(sent.total(), 2380);
}

TEST_F(InvoiceTest, NoEditsAfterSending) {
  auto sent = f.Given(Created(), Added(kBooks), v1::InvoiceSent());
  sent.When(Add(kStamps))
      .ThenRejects(StatusCode::kFailedPrecondition, "invoice is SENT: no more edits");
  sent.When(Remove("books")).ThenRejects(StatusCode::kFailedPrecondition, "no more edits");
  sent.When(SetCustomerTo("bob")).ThenRejects(StatusCode::kFailedPrecondition, "no more edits");
  sent.When(v1::SendInvoice()).ThenRejects(StatusCode::kFailedPrecondition, "no more edits");
  auto paid = f.Given(Created(), Added(kBooks), v1::InvoiceSent(), Paid(2380));
  paid.When(Add(kStamps))
      .ThenRejects(StatusCode::kFailedPrecondition, "invoice is PAID: no more edits");
}

TEST_F(InvoiceTest, PaymentNeedsASentInvoice) {
  f.Given(Created(), Added(kBooks))
      .When(Pay(100))
      .ThenRejects(StatusCode::kFailedPrecondition, "invoice not sent");
  f.Given(Created(), Added(kBooks), v1::InvoiceSent(), Paid(2380))
      .When(Pay(1))
      .ThenRejects(StatusCode::kFailedPrecondition, "already paid");
}

TEST_F(InvoiceTest, PaymentAmountMustBePositiveAndNotExceedWhatIsOwed) {
  auto sent = f.Given(Created(), Added(kBooks), v1::InvoiceSent(), Paid(1000));
  sent.When(Pay(0)).ThenRejects(StatusCode::kInvalidArgument, "must be > 0");
  sent.When(Pay(-5)).ThenRejects(StatusCode::kInvalidArgument, "must be > 0");
  sent.When(Pay(1381)).ThenRejects(StatusCode::kInvalidArgument,
                                   "overpayment: outstanding 1380, payment 1381");
}

TEST_F(InvoiceTest, PartialPaymentsThenPaidInFull) {
  auto sent = f.Given(Created(), Added(kBooks), v1::InvoiceSent());
  v1::Invoice partly;
  {
    auto outcome = sent.When(Pay(1000));
    outcome.ThenEmits(Paid(1000));
    ASSERT_NE(outcome.result().new_state, nullptr);
    partly = static_cast<const v1::Invoice&>(*outcome.result().new_state);
  }
  EXPECT_EQ(partly.status(), v1::INVOICE_STATUS_SENT);
  EXPECT_EQ(partly.paid(), 1000);

  v1::Invoice paid = partly;
  paid.set_paid(2380);
  paid.set_status(v1::INVOICE_STATUS_PAID);
  f.Given(Created(), Added(kBooks), v1::InvoiceSent(), Paid(1000))
      .When(Pay(1380))
      .ThenEmits(Paid(1380))
      .ThenState(paid);
}

}  // namespace
}  // namespace invoices
