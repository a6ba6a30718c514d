// Example read model: the invoice list of the invoices domain (RocksDB view "invoice_list"), with
// secondary-key rows so one prefix Scan lists invoices by status, by customer, by date or by
// total, already sorted.
//
//   Rows (every index row holds the same invoices.v1.InvoiceSummary as the invoice's row):
//     "invoice/<id>"                                   the invoice
//     "by_status/<DRAFT|SENT|PAID>/<total>/<id>"       by status, smallest total first
//     "by_customer/<customer>/<created>/<id>"          by customer, oldest first (once a
//                                                      customer is set)
//     "by_date/<created>/<id>"                         all invoices, oldest first
//     "by_total/<total>/<id>"                          all invoices, smallest total first
//     "line/<id>/<line item id>"                       invoices.v1.LineItem, the invoice's lines
//   <total> is zero-padded to 19 digits so that key order is numeric order; <created> is the
//   RFC 3339 UTC time of InvoiceCreated; '/' and '%' inside ids and customers are escaped as
//   %2F and %25, so a customer "a/b" cannot reach into another customer's rows.
//
//   auto runtime = leftfold::ProjectorRuntime::Start(transport, invoices::InvoiceListProjector());
//   // The sent invoices, largest last:
//   view.Scan({.prefix = invoices::ByStatusPrefix(invoices::v1::INVOICE_STATUS_SENT)});
//   // ada's invoices, oldest first:
//   view.Scan({.prefix = invoices::ByCustomerPrefix("ada")});
//
// When status, customer or total change, the old index rows are deleted and the new ones written
// in the same batch, so a scan never shows an invoice under a status it left.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "invoices/v1/invoices.pb.h"
#include "leftfold/projector.h"

namespace invoices {

leftfold::Projector InvoiceListProjector();

// Keys and prefixes of the invoice_list rows (see above).
std::string InvoiceKey(absl::string_view invoice_id);
std::string LinePrefix(absl::string_view invoice_id);
std::string ByStatusPrefix(v1::InvoiceStatus status);
std::string ByCustomerPrefix(absl::string_view customer);
inline constexpr char kByDatePrefix[] = "by_date/";
inline constexpr char kByTotalPrefix[] = "by_total/";

}  // namespace invoices
