// What the test binaries need from their environment: the real broker's address, scratch
// directories and unique names, so suites stay hermetic and can run side by side.
#pragma once

#include <string>

namespace leftfold::testing {

// $LEFTFOLD_TEST_BROKERS, or "" when no broker was started (kafka-labelled tests then fail loudly
// rather than skip: tools/test always starts one).
std::string TestBrokers();

// A fresh directory under $TMPDIR, removed by the caller or left for post-mortem.
std::string MakeTempDir(const std::string& prefix);

// `base` plus a suffix unique to this process and call, for topic and group names.
std::string UniqueName(const std::string& base);

}  // namespace leftfold::testing
