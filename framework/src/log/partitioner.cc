#include <librdkafka/rdkafka.h>

#include "log/log.h"

namespace leftfold::internal::log {

int32_t PartitionForKey(std::string_view key, int32_t partition_count) {
  // librdkafka's murmur2 partitioner is the Java client's algorithm; the embedded backend uses it
  // too, so a key lives in the same partition whichever backend wrote it.
  return rd_kafka_msg_partitioner_murmur2(nullptr, key.data(), key.size(), partition_count, nullptr,
                                          nullptr);
}

}  // namespace leftfold::internal::log
