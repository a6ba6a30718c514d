// The processor on the real broker ($LEFTFOLD_TEST_BROKERS): the unit suite's cases, for real.
#include "support/processor_cases.h"

namespace leftfold::testing {
INSTANTIATE_TEST_SUITE_P(Kafka, ProcessorTest, ::testing::Values(std::string("kafka")));
}  // namespace leftfold::testing
