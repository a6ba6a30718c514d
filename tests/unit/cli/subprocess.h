// Child processes for the CLI tests: run a program to completion capturing its output, or keep
// one running in the background (the dev server) and stop it with SIGTERM.
//
//   RunResult r = RunProcess({LEFTFOLD_CLI_BINARY, "send", ...}, absl::Seconds(30));
//   EXPECT_EQ(r.exit_code, 0) << r.err;
//
//   Background server({LEFTFOLD_DEV_BINARY, "--listen", addr}, dir + "/server.log");
//   ... server.Terminate(absl::Seconds(20));
//
// Not thread-safe; one owner.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace leftfold::testing {

struct RunResult {
  // The exit status, 128 + signal when killed by one, -1 when it could not start or timed out
  // (the child is killed then).
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] is a path) with stdin from /dev/null and stdout/stderr captured.
RunResult RunProcess(const std::vector<std::string>& argv, absl::Duration timeout);

// A child running in the background with stdout and stderr appended to `log_path`.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::string& log_path);
  ~Background();  // SIGKILL if still running
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  pid_t pid() const { return pid_; }
  // Whether the child is still running (reaps it if it ended).
  bool Running();
  // SIGTERM, then waits up to `grace` for the exit (SIGKILL after). Returns the exit status as
  // in RunResult.
  int Terminate(absl::Duration grace);

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

}  // namespace leftfold::testing
