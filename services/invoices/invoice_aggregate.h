// The invoices example's aggregate (the domain of Wix's event-sourcing talk): draft an invoice,
// add and remove line items, send it, record payments until it is paid.
//
//   leftfold::testing::AggregateFixture f(invoices::InvoiceAggregate());
//   f.Given(created, item_added, customer_set, sent).When(pay_too_much)
//       .ThenRejects(absl::StatusCode::kInvalidArgument, "overpayment");
//
// Rules (each rejection's code is what the client sees as the gRPC status):
// - Every command but CreateInvoice on an invoice never created: NOT_FOUND "invoice not found".
// - CreateInvoice: ALREADY_EXISTS when the invoice exists; INVALID_ARGUMENT for a currency that
//   is not three upper-case letters or a due date that is not YYYY-MM-DD. The customer is
//   optional.
// - AddLineItem, RemoveLineItem, SetCustomer, SendInvoice once the invoice is sent (or paid):
//   FAILED_PRECONDITION "invoice is SENT: no more edits".
// - AddLineItem: INVALID_ARGUMENT for an empty id, quantity <= 0, unit price <= 0, a tax rate
//   outside 0..10000 basis points, or a line amount over kMaxLineAmount; ALREADY_EXISTS for a
//   line item id in use; RESOURCE_EXHAUSTED beyond kMaxLineItems.
// - RemoveLineItem: NOT_FOUND "line item <id> not found".
// - SetCustomer: INVALID_ARGUMENT for an empty customer; the current customer emits nothing.
// - SendInvoice: FAILED_PRECONDITION without line items or without a customer.
// - RecordPayment: FAILED_PRECONDITION unless SENT ("not sent" for a draft, "already paid");
//   INVALID_ARGUMENT for an amount <= 0 or more than is outstanding ("overpayment").
//   The payment that covers the total makes the invoice PAID.
// Totals are computed in Apply (LineAmounts), never carried by events, so a fix to the rounding
// is a Version bump and a replay, not a data migration.
//
// The definition is immutable and thread-safe; build it once.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "invoices/v1/invoices.pb.h"
#include "leftfold/aggregate.h"

namespace invoices {

// The aggregate type name, and so the prefix of its topics ("invoices.invoice.commands", ...).
inline constexpr char kInvoiceType[] = "invoices.invoice";
// quantity * unit_price of one line item may not exceed this (cents): keeps every total and tax
// product far from int64 overflow.
inline constexpr int64_t kMaxLineAmount = 10'000'000'000'000;  // 100 billion currency units
inline constexpr int kMaxLineItems = 1000;

// The typed definition (e.g. for the test fixture).
leftfold::Aggregate<v1::Invoice> InvoiceAggregate();
// The same, type-erased, for the runtime.
leftfold::AggregateDefinition InvoiceDefinition();

// A line item's money: net = quantity * unit_price, tax = net * rate rounded half up to a cent.
// The aggregate and the projectors all use this, so their totals agree to the cent.
struct LineAmounts {
  int64_t net = 0;
  int64_t tax = 0;
};
LineAmounts AmountsOf(const v1::LineItem& item);

// "DRAFT", "SENT", "PAID" ("UNSPECIFIED" for a missing invoice): the enum name without its prefix,
// as used in view keys and SQL rows.
absl::string_view StatusName(v1::InvoiceStatus status);

}  // namespace invoices
