// The Log conformance suite (tests/support/log_conformance.h) on the kafka backend over
// librdkafka's in-process mock cluster; the cases it cannot run are skipped with the reason.
#include "support/log_conformance.h"

namespace leftfold::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(MockCluster, LogConformanceTest,
                         ::testing::Values(MockClusterLogBackend()), LogBackendName);

}  // namespace
}  // namespace leftfold::testing
