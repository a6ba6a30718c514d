// The Log conformance suite (tests/support/log_conformance.h) on the embedded backend.
#include "support/log_conformance.h"

namespace leftfold::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Embedded, LogConformanceTest, ::testing::Values(EmbeddedLogBackend()),
                         LogBackendName);

}  // namespace
}  // namespace leftfold::testing
