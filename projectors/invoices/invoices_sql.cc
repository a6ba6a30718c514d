#include "invoices/invoices_sql.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "invoices/invoice_aggregate.h"
#include "invoices/v1/invoices.pb.h"

namespace invoices {
namespace {

using leftfold::EventContext;
using leftfold::SqlParam;
using leftfold::SqlView;

// One statement per Exec: parameters go through PostgreSQL's extended protocol.
constexpr const char* kSchema[] = {
    R"sql(CREATE TABLE IF NOT EXISTS invoices (
      id          text PRIMARY KEY,
      customer    text,
      currency    text NOT NULL,
      due_date    date NOT NULL,
      status      text NOT NULL,
      subtotal    bigint NOT NULL DEFAULT 0,
      tax         bigint NOT NULL DEFAULT 0,
      total       bigint NOT NULL DEFAULT 0,
      paid        bigint NOT NULL DEFAULT 0,
      created_at  timestamptz NOT NULL,
      sent_at     timestamptz,
      paid_at     timestamptz,
      version     bigint NOT NULL))sql",
    R"sql(CREATE TABLE IF NOT EXISTS line_items (
      invoice_id  text NOT NULL REFERENCES invoices (id),
      id          text NOT NULL,
      description text NOT NULL,
      quantity    bigint NOT NULL,
      unit_price  bigint NOT NULL,
      tax_rate_bp integer NOT NULL,
      net         bigint NOT NULL,
      tax         bigint NOT NULL,
      PRIMARY KEY (invoice_id, id)))sql",
    "CREATE INDEX IF NOT EXISTS invoices_by_customer ON invoices (customer, created_at)",
    "CREATE INDEX IF NOT EXISTS invoices_by_status ON invoices (status, total)",
};

absl::Status Migrate(SqlView& sql) {
  for (const char* statement : kSchema) {
    if (absl::Status s = sql.Exec(statement).status(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string Timestamp(const EventContext& ctx) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", ctx.timestamp(), absl::UTCTimeZone());
}

// Runs an UPDATE of the invoice's row; an invoice without row means the tables were changed
// behind the projector's back, which must stop it rather than be papered over.
absl::Status UpdateInvoice(SqlView& sql, const EventContext& ctx, absl::string_view query,
                           const std::vector<SqlParam>& params) {
  absl::StatusOr<leftfold::SqlResult> result = sql.Exec(query, params);
  if (!result.ok()) return result.status();
  if (result->affected_rows != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("invoices_sql: no row for invoice ", ctx.aggregate_id().value()));
  }
  return absl::OkStatus();
}

// The totals are the sums over line_items, so adding and removing lines cannot drift.
absl::Status RefreshTotals(SqlView& sql, const EventContext& ctx) {
  return UpdateInvoice(sql, ctx,
                       "UPDATE invoices SET subtotal = s.net, tax = s.tax, total = s.net + s.tax,"
                       " version = $2"
                       " FROM (SELECT COALESCE(SUM(net), 0) AS net, COALESCE(SUM(tax), 0) AS tax"
                       "       FROM line_items WHERE invoice_id = $1) s"
                       " WHERE id = $1",
                       {ctx.aggregate_id(), ctx.version().value()});
}

}  // namespace

leftfold::Projector InvoicesSqlProjector() {
  return leftfold::Projector("invoices_sql")
      .From(kInvoiceType)
      .Migrate(Migrate)
      .On<v1::InvoiceCreated>(
          [](const EventContext& ctx, const v1::InvoiceCreated& e, SqlView& sql) -> absl::Status {
            return sql
                .Exec(
                    "INSERT INTO invoices (id, customer, currency, due_date, status, created_at,"
                    " version) VALUES ($1, $2, $3, $4::date, 'DRAFT', $5::timestamptz, $6)",
                    {ctx.aggregate_id(), e.customer().empty() ? SqlParam(nullptr) : e.customer(),
                     e.currency(), e.due_date(), Timestamp(ctx), ctx.version().value()})
                .status();
          })
      .On<v1::LineItemAdded>([](const EventContext& ctx, const v1::LineItemAdded& e,
                                SqlView& sql) -> absl::Status {
        const v1::LineItem& item = e.item();
        LineAmounts amounts = AmountsOf(item);
        absl::Status s = sql.Exec(
                                "INSERT INTO line_items (invoice_id, id, description, quantity,"
                                " unit_price, tax_rate_bp, net, tax)"
                                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                                {ctx.aggregate_id(), item.id(), item.description(), item.quantity(),
                                 item.unit_price(), item.tax_rate_bp(), amounts.net, amounts.tax})
                             .status();
        if (!s.ok()) return s;
        return RefreshTotals(sql, ctx);
      })
      .On<v1::LineItemRemoved>(
          [](const EventContext& ctx, const v1::LineItemRemoved& e, SqlView& sql) -> absl::Status {
            absl::Status s = sql.Exec("DELETE FROM line_items WHERE invoice_id = $1 AND id = $2",
                                      {ctx.aggregate_id(), e.line_item_id()})
                                 .status();
            if (!s.ok()) return s;
            return RefreshTotals(sql, ctx);
          })
      .On<v1::CustomerSet>(
          [](const EventContext& ctx, const v1::CustomerSet& e, SqlView& sql) -> absl::Status {
            return UpdateInvoice(sql, ctx,
                                 "UPDATE invoices SET customer = $2, version = $3 WHERE id = $1",
                                 {ctx.aggregate_id(), e.customer(), ctx.version().value()});
          })
      .On<v1::InvoiceSent>(
          [](const EventContext& ctx, const v1::InvoiceSent&, SqlView& sql) -> absl::Status {
            return UpdateInvoice(
                sql, ctx,
                "UPDATE invoices SET status = 'SENT', sent_at = $2::timestamptz, version = $3"
                " WHERE id = $1",
                {ctx.aggregate_id(), Timestamp(ctx), ctx.version().value()});
          })
      .On<v1::PaymentRecorded>(
          [](const EventContext& ctx, const v1::PaymentRecorded& e, SqlView& sql) -> absl::Status {
            // Same rule as the aggregate's Apply: the payment that covers the total makes it PAID.
            return UpdateInvoice(
                sql, ctx,
                "UPDATE invoices SET paid = paid + $2,"
                " status = CASE WHEN paid + $2 >= total THEN 'PAID' ELSE status END,"
                " paid_at = CASE WHEN paid + $2 >= total THEN $3::timestamptz ELSE paid_at END,"
                " version = $4 WHERE id = $1",
                {ctx.aggregate_id(), e.amount(), Timestamp(ctx), ctx.version().value()});
          });
}

}  // namespace invoices
