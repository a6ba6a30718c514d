#include "topic_configs.h"

#include <librdkafka/rdkafka.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "log/kafka/client.h"

namespace leftfold::cli {
namespace {

namespace kafka = internal::log::kafka;

// The one librdkafka object here that the kafka backend's RdKafkaDeleter does not cover.
struct ConfigResourceDeleter {
  void operator()(rd_kafka_ConfigResource_t* resource) const {
    rd_kafka_ConfigResource_destroy(resource);
  }
};

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> TopicConfigs(const std::string& brokers,
                                                                const std::string& topic,
                                                                absl::Duration timeout) {
  absl::StatusOr<kafka::ConfPtr> conf = kafka::BuildConf(brokers, {});
  if (!conf.ok()) return conf.status();
  absl::StatusOr<kafka::HandlePtr> rk = kafka::NewHandle(RD_KAFKA_PRODUCER, *std::move(conf));
  if (!rk.ok()) return rk.status();
  kafka::RdPtr<rd_kafka_queue_t> queue(rd_kafka_queue_new(rk->get()));
  kafka::RdPtr<rd_kafka_AdminOptions_t> options(
      rd_kafka_AdminOptions_new(rk->get(), RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS));
  char errstr[512] = {};
  rd_kafka_AdminOptions_set_request_timeout(options.get(), kafka::ToMillis(timeout), errstr,
                                            sizeof(errstr));
  std::unique_ptr<rd_kafka_ConfigResource_t, ConfigResourceDeleter> resource(
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()));
  rd_kafka_ConfigResource_t* resources[] = {resource.get()};
  rd_kafka_DescribeConfigs(rk->get(), resources, 1, options.get(), queue.get());

  const std::string op = absl::StrCat("describe configs of ", topic);
  kafka::RdPtr<rd_kafka_event_t> event(
      rd_kafka_queue_poll(queue.get(), kafka::ToMillis(timeout + absl::Seconds(1))));
  if (event == nullptr) return kafka::StatusFromCode(op, RD_KAFKA_RESP_ERR__TIMED_OUT);
  if (rd_kafka_resp_err_t err = rd_kafka_event_error(event.get()); err) {
    return kafka::StatusFromCode(op, err, rd_kafka_event_error_string(event.get()));
  }
  const rd_kafka_DescribeConfigs_result_t* result =
      rd_kafka_event_DescribeConfigs_result(event.get());
  size_t count = 0;
  const rd_kafka_ConfigResource_t** described =
      result != nullptr ? rd_kafka_DescribeConfigs_result_resources(result, &count) : nullptr;
  if (count != 1) return absl::InternalError(absl::StrCat(op, ": no answer for the topic"));
  if (rd_kafka_resp_err_t err = rd_kafka_ConfigResource_error(described[0]); err) {
    return kafka::StatusFromCode(op, err, rd_kafka_ConfigResource_error_string(described[0]));
  }
  size_t entry_count = 0;
  const rd_kafka_ConfigEntry_t** entries =
      rd_kafka_ConfigResource_configs(described[0], &entry_count);
  std::map<std::string, std::string> configs;
  for (size_t i = 0; i < entry_count; ++i) {
    if (rd_kafka_ConfigEntry_source(entries[i]) != RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG) {
      continue;  // a broker-wide or default value, not this topic's own
    }
    const char* value = rd_kafka_ConfigEntry_value(entries[i]);
    configs[rd_kafka_ConfigEntry_name(entries[i])] = value != nullptr ? value : "";
  }
  return configs;
}

}  // namespace leftfold::cli
