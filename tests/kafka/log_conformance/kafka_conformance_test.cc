// The Log conformance suite (tests/support/log_conformance.h) on the kafka backend against the
// real broker at $LEFTFOLD_TEST_BROKERS (tools/test starts it). No case is skipped here.
#include "support/log_conformance.h"
#include "support/test_env.h"

namespace leftfold::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Kafka, LogConformanceTest,
                         ::testing::Values(KafkaLogBackend(TestBrokers())), LogBackendName);

}  // namespace
}  // namespace leftfold::testing
