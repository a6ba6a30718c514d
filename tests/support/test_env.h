// What the test binaries need from their environment: the real broker's address, scratch
// directories and unique names, so suites stay hermetic and can run side by side.
#pragma once

#include <string>
#include <vector>

namespace leftfold::testing {

// $LEFTFOLD_TEST_BROKERS, or "" when no broker was started (kafka-labelled tests then fail loudly
// rather than skip: tools/test always starts one).
std::string TestBrokers();

// A fresh directory under $TMPDIR, removed by the caller or left for post-mortem.
std::string MakeTempDir(const std::string& prefix);

// `base` plus a suffix unique to this process and call, for topic and group names.
std::string UniqueName(const std::string& base);

// Runs this test binary again as a child process with only `test` selected (a DISABLED_ test,
// which the child runs) and `env` ("NAME=value" entries) added to its environment, and waits
// for it. Returns the child's wait status (WIFSIGNALED / WTERMSIG apply), or -1 when it could
// not be started. For tests whose child must die for real (kill -9 of itself mid-work).
int RunSelfAsChild(const std::string& test, const std::vector<std::string>& env);

}  // namespace leftfold::testing
