// The processor on the embedded backend (no servers). The same cases run on the real broker in
// tests/kafka/processor.
#include "support/processor_cases.h"

namespace leftfold::testing {
INSTANTIATE_TEST_SUITE_P(Embedded, ProcessorTest, ::testing::Values(std::string("embedded")));
}  // namespace leftfold::testing
