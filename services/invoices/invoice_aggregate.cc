#include "invoices/invoice_aggregate.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace invoices {
namespace {

using v1::Invoice;
using v1::InvoiceStatus;

// Every command but CreateInvoice needs an invoice.
absl::Status RequireExists(const Invoice& state) {
  if (state.status() == v1::INVOICE_STATUS_UNSPECIFIED) {
    return absl::NotFoundError("invoice not found");
  }
  return absl::OkStatus();
}

// Edits are allowed on drafts only: what was sent to the customer must not change.
absl::Status RequireDraft(const Invoice& state) {
  if (absl::Status s = RequireExists(state); !s.ok()) return s;
  if (state.status() != v1::INVOICE_STATUS_DRAFT) {
    return absl::FailedPreconditionError(
        absl::StrCat("invoice is ", StatusName(state.status()), ": no more edits"));
  }
  return absl::OkStatus();
}

absl::Status ValidateCurrency(absl::string_view currency) {
  bool ok = currency.size() == 3 && std::all_of(currency.begin(), currency.end(), [](char c) {
              return absl::ascii_isupper(static_cast<unsigned char>(c));
            });
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("currency must be an ISO 4217 code like \"EUR\", got \"", currency, "\""));
  }
  return absl::OkStatus();
}

absl::Status ValidateDate(absl::string_view date) {
  absl::Time parsed;
  std::string error;
  if (date.size() != 10 || !absl::ParseTime("%Y-%m-%d", date, &parsed, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("due date must be YYYY-MM-DD, got \"", date, "\""));
  }
  return absl::OkStatus();
}

absl::Status ValidateLineItem(const v1::LineItem& item) {
  if (item.id().empty()) return absl::InvalidArgumentError("line item id is required");
  if (item.quantity() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("quantity must be > 0, got ", item.quantity()));
  }
  if (item.unit_price() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("unit price must be > 0 cents, got ", item.unit_price()));
  }
  if (item.tax_rate_bp() < 0 || item.tax_rate_bp() > 10000) {
    return absl::InvalidArgumentError(
        absl::StrCat("tax rate must be 0..10000 basis points, got ", item.tax_rate_bp()));
  }
  // Division, not multiplication: the product itself could overflow.
  if (item.unit_price() > kMaxLineAmount / item.quantity()) {
    return absl::InvalidArgumentError(
        absl::StrCat("line amount exceeds ", kMaxLineAmount, " cents"));
  }
  return absl::OkStatus();
}

const v1::LineItem* FindLine(const Invoice& state, absl::string_view id) {
  for (const v1::LineItem& item : state.line_items()) {
    if (item.id() == id) return &item;
  }
  return nullptr;
}

// Recomputed from the line items after every change, so the totals cannot drift.
void Recompute(Invoice& state) {
  int64_t subtotal = 0;
  int64_t tax = 0;
  for (const v1::LineItem& item : state.line_items()) {
    LineAmounts amounts = AmountsOf(item);
    subtotal += amounts.net;
    tax += amounts.tax;
  }
  state.set_subtotal(subtotal);
  state.set_tax(tax);
  state.set_total(subtotal + tax);
}

}  // namespace

LineAmounts AmountsOf(const v1::LineItem& item) {
  LineAmounts amounts;
  amounts.net = item.quantity() * item.unit_price();
  amounts.tax = (amounts.net * item.tax_rate_bp() + 5000) / 10000;  // half up, amounts >= 0
  return amounts;
}

absl::string_view StatusName(InvoiceStatus status) {
  switch (status) {
    case v1::INVOICE_STATUS_DRAFT:
      return "DRAFT";
    case v1::INVOICE_STATUS_SENT:
      return "SENT";
    case v1::INVOICE_STATUS_PAID:
      return "PAID";
    default:
      return "UNSPECIFIED";
  }
}

leftfold::Aggregate<Invoice> InvoiceAggregate() {
  return leftfold::Aggregate<Invoice>(kInvoiceType)
      .Version(1)
      .Decide<v1::CreateInvoice>(
          [](const Invoice& state, const v1::CreateInvoice& cmd, leftfold::Emit& emit) {
            if (state.status() != v1::INVOICE_STATUS_UNSPECIFIED) {
              return absl::AlreadyExistsError("invoice already exists");
            }
            if (absl::Status s = ValidateCurrency(cmd.currency()); !s.ok()) return s;
            if (absl::Status s = ValidateDate(cmd.due_date()); !s.ok()) return s;
            v1::InvoiceCreated created;
            created.set_customer(cmd.customer());
            created.set_currency(cmd.currency());
            created.set_due_date(cmd.due_date());
            emit(created);
            return absl::OkStatus();
          })
      .Decide<v1::AddLineItem>(
          [](const Invoice& state, const v1::AddLineItem& cmd, leftfold::Emit& emit) {
            if (absl::Status s = RequireDraft(state); !s.ok()) return s;
            if (absl::Status s = ValidateLineItem(cmd.item()); !s.ok()) return s;
            if (FindLine(state, cmd.item().id()) != nullptr) {
              return absl::AlreadyExistsError(
                  absl::StrCat("line item ", cmd.item().id(), " already exists"));
            }
            if (state.line_items_size() >= kMaxLineItems) {
              return absl::ResourceExhaustedError(
                  absl::StrCat("an invoice has at most ", kMaxLineItems, " line items"));
            }
            v1::LineItemAdded added;
            *added.mutable_item() = cmd.item();
            emit(added);
            return absl::OkStatus();
          })
      .Decide<v1::RemoveLineItem>([](const Invoice& state, const v1::RemoveLineItem& cmd,
                                     leftfold::Emit& emit) {
        if (absl::Status s = RequireDraft(state); !s.ok()) return s;
        if (FindLine(state, cmd.line_item_id()) == nullptr) {
          return absl::NotFoundError(absl::StrCat("line item ", cmd.line_item_id(), " not found"));
        }
        v1::LineItemRemoved removed;
        removed.set_line_item_id(cmd.line_item_id());
        emit(removed);
        return absl::OkStatus();
      })
      .Decide<v1::SetCustomer>(
          [](const Invoice& state, const v1::SetCustomer& cmd, leftfold::Emit& emit) {
            if (absl::Status s = RequireDraft(state); !s.ok()) return s;
            if (cmd.customer().empty()) return absl::InvalidArgumentError("customer is required");
            if (cmd.customer() == state.customer()) return absl::OkStatus();  // nothing changes
            v1::CustomerSet set;
            set.set_customer(cmd.customer());
            emit(set);
            return absl::OkStatus();
          })
      .Decide<v1::SendInvoice>(
          [](const Invoice& state, const v1::SendInvoice&, leftfold::Emit& emit) {
            if (absl::Status s = RequireDraft(state); !s.ok()) return s;
            if (state.line_items_size() == 0) {
              return absl::FailedPreconditionError("cannot send an invoice without line items");
            }
            if (state.customer().empty()) {
              return absl::FailedPreconditionError("cannot send an invoice without a customer");
            }
            emit(v1::InvoiceSent());
            return absl::OkStatus();
          })
      .Decide<v1::RecordPayment>(
          [](const Invoice& state, const v1::RecordPayment& cmd, leftfold::Emit& emit) {
            if (absl::Status s = RequireExists(state); !s.ok()) return s;
            if (state.status() == v1::INVOICE_STATUS_DRAFT) {
              return absl::FailedPreconditionError("invoice not sent: nothing to pay yet");
            }
            if (state.status() == v1::INVOICE_STATUS_PAID) {
              return absl::FailedPreconditionError("invoice already paid");
            }
            if (cmd.amount() <= 0) {
              return absl::InvalidArgumentError(
                  absl::StrCat("payment amount must be > 0, got ", cmd.amount()));
            }
            int64_t outstanding = state.total() - state.paid();
            if (cmd.amount() > outstanding) {
              return absl::InvalidArgumentError(absl::StrCat(
                  "overpayment: outstanding ", outstanding, ", payment ", cmd.amount()));
            }
            v1::PaymentRecorded recorded;
            recorded.set_amount(cmd.amount());
            recorded.set_reference(cmd.reference());
            emit(recorded);
            return absl::OkStatus();
          })
      .Apply<v1::InvoiceCreated>([](Invoice& state, const v1::InvoiceCreated& e) {
        state.set_status(v1::INVOICE_STATUS_DRAFT);
        state.set_customer(e.customer());
        state.set_currency(e.currency());
        state.set_due_date(e.due_date());
      })
      .Apply<v1::LineItemAdded>([](Invoice& state, const v1::LineItemAdded& e) {
        *state.add_line_items() = e.item();
        Recompute(state);
      })
      .Apply<v1::LineItemRemoved>([](Invoice& state, const v1::LineItemRemoved& e) {
        for (int i = 0; i < state.line_items_size(); ++i) {
          if (state.line_items(i).id() == e.line_item_id()) {
            state.mutable_line_items()->DeleteSubrange(i, 1);
            break;
          }
        }
        Recompute(state);
      })
      .Apply<v1::CustomerSet>(
          [](Invoice& state, const v1::CustomerSet& e) { state.set_customer(e.customer()); })
      .Apply<v1::InvoiceSent>(
          [](Invoice& state, const v1::InvoiceSent&) { state.set_status(v1::INVOICE_STATUS_SENT); })
      .Apply<v1::PaymentRecorded>([](Invoice& state, const v1::PaymentRecorded& e) {
        state.set_paid(state.paid() + e.amount());
        if (state.paid() >= state.total()) state.set_status(v1::INVOICE_STATUS_PAID);
      });
}

leftfold::AggregateDefinition InvoiceDefinition() { return InvoiceAggregate(); }

}  // namespace invoices
