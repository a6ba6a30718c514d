// The main() of a binary that hosts one aggregate's processor (leftfold-bank-processor,
// leftfold-clicks-processor, leftfold-invoices-processor): the same flags for every domain
// (--brokers, --group, --state-dir, --instance-id, ...; `--help` lists them), structured logs on
// stderr, and a clean stop on SIGTERM/SIGINT (the open transaction finishes or aborts, the
// consumer leaves its group).
//
//   int main(int argc, char** argv) {
//     return leftfold::services::ProcessorMain(
//         argc, argv, {.component = "clicks-processor",
//                      .description = "Runs the click counter's processor (leftfold example).",
//                      .definition = clicks::ClicksAggregate()});
//   }
//
// Exit codes: 0 after a signal, 1 when the processor cannot start or stops on an error, 2 for a
// bad flag value CLI11 does not check itself (and CLI11's own codes for parse errors).
#pragma once

#include <string>
#include <vector>

#include "leftfold/aggregate.h"
#include "leftfold/process_manager.h"

namespace leftfold::services {

struct ProcessorBinary {
  // The `component` field of every log line, e.g. "bank-processor".
  std::string component;
  // The first line of --help.
  std::string description;
  // The aggregate the binary hosts; its type names the default group and the topics.
  AggregateDefinition definition;
  // Optional: more of the domain that the binary also hosts when started with
  // `--with-<extras_flag>` (the bank's transfers: their aggregate and process manager). Each
  // extra aggregate runs in its own default group (`--group` names the main one's); all share
  // --state-dir and --instance-id. Empty: no such flag.
  std::string extras_flag;
  std::string extras_help;
  std::vector<AggregateDefinition> extra_aggregates;
  std::vector<ProcessDefinition> extra_processes;
};

// Call it first thing in main(): it blocks the termination signals before any thread starts.
int ProcessorMain(int argc, char** argv, const ProcessorBinary& binary);

}  // namespace leftfold::services
