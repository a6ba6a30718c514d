// leftfold-bank-processor: hosts the bank account aggregate's processor; with --with-transfers
// also the transfer aggregate's processor and the transfer process manager (debit, credit,
// refund on failure). The flags, logging and shutdown are every example processor's
// (services/common/processor_main.h).
//
//   leftfold-bank-processor --brokers 127.0.0.1:9092 --state-dir /var/lib/bank --with-transfers
//   leftfold-bank-processor --help
#include "common/processor_main.h"

#include "bank/bank_aggregate.h"
#include "bank/transfer.h"

int main(int argc, char** argv) {
  return leftfold::services::ProcessorMain(
      argc, argv,
      {.component = "bank-processor",
       .description = "Runs the bank account aggregate's processor (leftfold example).",
       .definition = bank::AccountDefinition(),
       .extras_flag = "transfers",
       .extras_help = "also host transfers: the bank.transfer aggregate's processor (its default "
                      "group) and the transfer process manager",
       .extra_aggregates = {bank::TransferDefinition()},
       .extra_processes = {bank::TransferProcess()}});
}
