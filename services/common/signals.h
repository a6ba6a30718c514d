// Clean shutdown for leftfold's binaries: SIGTERM and SIGINT are blocked in every thread and
// received by one waiting call, so components stop from ordinary code, not a signal handler.
//
//   int main() {
//     leftfold::services::BlockTerminationSignals();   // first, before any thread starts
//     ... start components ...
//     int sig = leftfold::services::WaitForTerminationSignal();
//     ... stop components ...
//   }
#pragma once

namespace leftfold::services {

void BlockTerminationSignals();
// Returns the signal number received (SIGTERM or SIGINT).
int WaitForTerminationSignal();

}  // namespace leftfold::services
