// leftfold-clicks-processor: hosts the click counter's processor (the clicks.user aggregate).
// The flags, logging and shutdown are every example processor's
// (services/common/processor_main.h).
//
//   leftfold-clicks-processor --brokers 127.0.0.1:9092 --state-dir /var/lib/clicks
//   leftfold-clicks-processor --help
#include "common/processor_main.h"

#include "clicks/clicks.h"

int main(int argc, char** argv) {
  return leftfold::services::ProcessorMain(
      argc, argv,
      {.component = "clicks-processor",
       .description = "Runs the click counter's processor (clicks.user, leftfold example).",
       .definition = clicks::ClicksAggregate()});
}
