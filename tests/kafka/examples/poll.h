// Polling a CLI command until its output shows an asynchronous effect (a process manager's next
// step, a view catching up), shared by the example end-to-end tests.
//
//   RunResult r = RunUntilOutputContains([&] { return Cli({"inspect", type, id}); },
//                                        R"("status":"COMPLETED")", absl::Seconds(60));
#pragma once

#include <functional>
#include <string>

#include "../../unit/cli/subprocess.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"

namespace leftfold::testing {

// Runs `run` until it exits 0 with `want` in its stdout or `timeout` passes; returns the last run.
inline RunResult RunUntilOutputContains(const std::function<RunResult()>& run,
                                        const std::string& want, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  RunResult r;
  do {
    r = run();
    if (r.exit_code == 0 && absl::StrContains(r.out, want)) return r;
    absl::SleepFor(absl::Milliseconds(200));  // pacing between polls, not synchronisation
  } while (absl::Now() < deadline);
  return r;
}

}  // namespace leftfold::testing
