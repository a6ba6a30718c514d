// Example read model in PostgreSQL: the invoices domain as two plain tables, so users query it
// with SQL (projector "invoices_sql", a SqlView projector). Its Migrate function creates:
//
//   invoices    (id PK, customer NULL until set, currency, due_date date, status 'DRAFT'|'SENT'|
//                'PAID', subtotal, tax, total, paid (cents), created_at, sent_at, paid_at,
//                version = the invoice's last applied event)
//   line_items  (invoice_id, id, description, quantity, unit_price, tax_rate_bp, net, tax;
//                PK (invoice_id, id))
//
//   auto runtime = leftfold::ProjectorRuntime::Start(
//       transport, invoices::InvoicesSqlProjector(),
//       {.postgres_uri = "postgresql://app@db:5432/app"});
//
//   -- What each customer still owes, largest first:
//   SELECT customer, SUM(total - paid) AS outstanding
//     FROM invoices WHERE status = 'SENT'
//    GROUP BY customer ORDER BY outstanding DESC;
//   -- Revenue per tax rate, over paid invoices:
//   SELECT l.tax_rate_bp, SUM(l.net) AS net, SUM(l.tax) AS tax
//     FROM line_items l JOIN invoices i ON i.id = l.invoice_id
//    WHERE i.status = 'PAID' GROUP BY l.tax_rate_bp;
//
// Each event batch and the projector's checkpoint commit in one SQL transaction, so the tables
// are the exact fold of the events up to the checkpoint. Totals come from invoices::AmountsOf,
// the aggregate's own rounding.
#pragma once

#include "leftfold/projector.h"

namespace invoices {

leftfold::Projector InvoicesSqlProjector();

}  // namespace invoices
