// leftfold-invoices-processor: hosts the invoice aggregate's processor (invoices.invoice).
// The flags, logging and shutdown are every example processor's
// (services/common/processor_main.h).
//
//   leftfold-invoices-processor --brokers 127.0.0.1:9092 --state-dir /var/lib/invoices
//   leftfold-invoices-processor --help
#include "common/processor_main.h"

#include "invoices/invoice_aggregate.h"

int main(int argc, char** argv) {
  return leftfold::services::ProcessorMain(
      argc, argv,
      {.component = "invoices-processor",
       .description =
           "Runs the invoice aggregate's processor (invoices.invoice, leftfold example).",
       .definition = invoices::InvoiceDefinition()});
}
