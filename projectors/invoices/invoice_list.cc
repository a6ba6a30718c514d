#include "invoices/invoice_list.h"

#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "invoices/invoice_aggregate.h"

namespace invoices {
namespace {

using leftfold::EventContext;
using leftfold::View;
using v1::InvoiceSummary;

// A key part may not contain the separator; '%' is escaped first so the escaping is reversible.
std::string Escape(absl::string_view part) {
  return absl::StrReplaceAll(part, {{"%", "%25"}, {"/", "%2F"}});
}

// Fixed width, so that the byte order of keys is the numeric order of totals (never negative).
std::string Padded(int64_t cents) { return absl::StrFormat("%019d", cents); }

// Every index row of one version of the summary.
std::set<std::string> IndexKeys(const InvoiceSummary& row) {
  std::string id = Escape(row.id());
  std::set<std::string> keys = {
      absl::StrCat(ByStatusPrefix(row.status()), Padded(row.total()), "/", id),
      absl::StrCat(kByDatePrefix, row.created(), "/", id),
      absl::StrCat(kByTotalPrefix, Padded(row.total()), "/", id),
  };
  if (!row.customer().empty()) {
    keys.insert(absl::StrCat(ByCustomerPrefix(row.customer()), row.created(), "/", id));
  }
  return keys;
}

// Writes the invoice's row and its index rows, and deletes the index rows of `before` that
// `after` no longer has (the invoice moved to another status, customer or total).
absl::Status Save(View& view, const InvoiceSummary& before, const InvoiceSummary& after) {
  std::set<std::string> old_keys = IndexKeys(before);
  std::set<std::string> new_keys = IndexKeys(after);
  for (const std::string& key : old_keys) {
    if (new_keys.count(key) > 0) continue;
    if (absl::Status s = view.Delete(key); !s.ok()) return s;
  }
  for (const std::string& key : new_keys) {
    if (absl::Status s = view.Put(key, after); !s.ok()) return s;
  }
  return view.Put(InvoiceKey(after.id()), after);
}

// A handler that loads the invoice's row, lets `change` edit it (and the view, for line rows),
// and saves the row with its index rows.
template <typename E, typename Fn>
auto Update(Fn change) {
  return [change](const EventContext& ctx, const E& e, View& view) -> absl::Status {
    const std::string& id = ctx.aggregate_id().value();
    absl::StatusOr<InvoiceSummary> before = view.Get<InvoiceSummary>(InvoiceKey(id));
    if (absl::IsNotFound(before.status())) {
      before = InvoiceSummary();  // InvoiceCreated: nothing to replace
    } else if (!before.ok()) {
      return before.status();
    }
    InvoiceSummary after = *before;
    after.set_id(id);
    if (absl::Status s = change(ctx, e, view, after); !s.ok()) return s;
    if (before->id().empty()) return Save(view, after, after);  // no old index rows
    return Save(view, *before, after);
  };
}

void AddAmounts(InvoiceSummary& row, const LineAmounts& amounts, int sign) {
  row.set_subtotal(row.subtotal() + sign * amounts.net);
  row.set_tax(row.tax() + sign * amounts.tax);
  row.set_total(row.subtotal() + row.tax());
  row.set_line_items(row.line_items() + sign);
}

}  // namespace

std::string InvoiceKey(absl::string_view invoice_id) {
  return absl::StrCat("invoice/", Escape(invoice_id));
}
std::string LinePrefix(absl::string_view invoice_id) {
  return absl::StrCat("line/", Escape(invoice_id), "/");
}
std::string ByStatusPrefix(v1::InvoiceStatus status) {
  return absl::StrCat("by_status/", StatusName(status), "/");
}
std::string ByCustomerPrefix(absl::string_view customer) {
  return absl::StrCat("by_customer/", Escape(customer), "/");
}

leftfold::Projector InvoiceListProjector() {
  return leftfold::Projector("invoice_list")
      .From(kInvoiceType)
      .On<v1::InvoiceCreated>(Update<v1::InvoiceCreated>(
          [](const EventContext& ctx, const v1::InvoiceCreated& e, View&, InvoiceSummary& row) {
            row.set_customer(e.customer());
            row.set_currency(e.currency());
            row.set_due_date(e.due_date());
            row.set_status(v1::INVOICE_STATUS_DRAFT);
            row.set_created(
                absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", ctx.timestamp(), absl::UTCTimeZone()));
            return absl::OkStatus();
          }))
      .On<v1::LineItemAdded>(Update<v1::LineItemAdded>(
          [](const EventContext&, const v1::LineItemAdded& e, View& view, InvoiceSummary& row) {
            AddAmounts(row, AmountsOf(e.item()), +1);
            return view.Put(LinePrefix(row.id()) + Escape(e.item().id()), e.item());
          }))
      .On<v1::LineItemRemoved>(Update<v1::LineItemRemoved>(
          [](const EventContext&, const v1::LineItemRemoved& e, View& view, InvoiceSummary& row) {
            std::string key = LinePrefix(row.id()) + Escape(e.line_item_id());
            absl::StatusOr<v1::LineItem> item = view.Get<v1::LineItem>(key);
            if (!item.ok()) return item.status();  // the aggregate never removes a missing line
            AddAmounts(row, AmountsOf(*item), -1);
            return view.Delete(key);
          }))
      .On<v1::CustomerSet>(Update<v1::CustomerSet>(
          [](const EventContext&, const v1::CustomerSet& e, View&, InvoiceSummary& row) {
            row.set_customer(e.customer());
            return absl::OkStatus();
          }))
      .On<v1::InvoiceSent>(Update<v1::InvoiceSent>(
          [](const EventContext&, const v1::InvoiceSent&, View&, InvoiceSummary& row) {
            row.set_status(v1::INVOICE_STATUS_SENT);
            return absl::OkStatus();
          }))
      .On<v1::PaymentRecorded>(Update<v1::PaymentRecorded>(
          [](const EventContext&, const v1::PaymentRecorded& e, View&, InvoiceSummary& row) {
            row.set_paid(row.paid() + e.amount());
            if (row.paid() >= row.total()) row.set_status(v1::INVOICE_STATUS_PAID);
            return absl::OkStatus();
          }));
}

}  // namespace invoices
