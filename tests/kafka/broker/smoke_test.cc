// Proves the real broker that tools/test starts is usable for what leftfold needs: topic
// creation, transactions, and read_committed isolation. Talks to librdkafka directly, so it
// fails here (not in a framework test) when the broker setup is wrong.
#include <librdkafka/rdkafka.h>

#include <memory>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "support/test_env.h"

namespace leftfold {
namespace {

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

KafkaPtr NewClient(rd_kafka_type_t type,
                   std::initializer_list<std::pair<const char*, std::string>> props) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  EXPECT_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", testing::TestBrokers().c_str(), err,
                              sizeof(err)),
            RD_KAFKA_CONF_OK)
      << err;
  for (const auto& [key, value] : props) {
    EXPECT_EQ(rd_kafka_conf_set(conf, key, value.c_str(), err, sizeof(err)), RD_KAFKA_CONF_OK)
        << key << ": " << err;
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof(err));
  EXPECT_NE(rk, nullptr) << err;
  return KafkaPtr(rk);
}

void ExpectNoError(rd_kafka_error_t* error, const char* what) {
  if (error != nullptr) {
    ADD_FAILURE() << what << ": " << rd_kafka_error_string(error);
    rd_kafka_error_destroy(error);
  }
}

void CreateTopic(rd_kafka_t* rk, const std::string& name, int partitions) {
  char err[512];
  rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(name.c_str(), partitions, 1, err, sizeof(err));
  ASSERT_NE(topic, nullptr) << err;
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &topic, 1, nullptr, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 30000);
  ASSERT_NE(event, nullptr) << "CreateTopics timed out";
  const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event);
  ASSERT_NE(result, nullptr) << rd_kafka_event_error_string(event);
  size_t count = 0;
  const rd_kafka_topic_result_t** topics = rd_kafka_CreateTopics_result_topics(result, &count);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(rd_kafka_topic_result_error(topics[0]), RD_KAFKA_RESP_ERR_NO_ERROR)
      << rd_kafka_topic_result_error_string(topics[0]);
  rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_NewTopic_destroy(topic);
}

void ProduceValues(rd_kafka_t* producer, const std::string& topic, const std::string& prefix,
                   int count) {
  for (int i = 0; i < count; ++i) {
    std::string value = absl::StrCat(prefix, "-", i);
    ASSERT_EQ(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY("k", 1),
                                RD_KAFKA_V_VALUE(value.data(), value.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
}

TEST(KafkaBroker, ReadCommittedSeesExactlyTheCommittedTransactions) {
  ASSERT_FALSE(testing::TestBrokers().empty()) << "LEFTFOLD_TEST_BROKERS is not set";
  const std::string topic = testing::UniqueName("smoke");

  KafkaPtr producer =
      NewClient(RD_KAFKA_PRODUCER,
                {{"transactional.id", testing::UniqueName("smoke-txn")}, {"linger.ms", "1"}});
  CreateTopic(producer.get(), topic, 1);
  ExpectNoError(rd_kafka_init_transactions(producer.get(), 30000), "init_transactions");

  ExpectNoError(rd_kafka_begin_transaction(producer.get()), "begin committed");
  ProduceValues(producer.get(), topic, "committed", 5);
  ExpectNoError(rd_kafka_commit_transaction(producer.get(), 30000), "commit");

  ExpectNoError(rd_kafka_begin_transaction(producer.get()), "begin aborted");
  ProduceValues(producer.get(), topic, "aborted", 5);
  ASSERT_EQ(rd_kafka_flush(producer.get(), 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  ExpectNoError(rd_kafka_abort_transaction(producer.get(), 30000), "abort");

  // A last committed record marks the end: once it is read, everything before it was seen.
  ExpectNoError(rd_kafka_begin_transaction(producer.get()), "begin end marker");
  ProduceValues(producer.get(), topic, "end", 1);
  ExpectNoError(rd_kafka_commit_transaction(producer.get(), 30000), "commit end marker");

  KafkaPtr consumer =
      NewClient(RD_KAFKA_CONSUMER, {{"group.id", testing::UniqueName("smoke-group")},
                                    {"isolation.level", "read_committed"},
                                    {"auto.offset.reset", "earliest"},
                                    {"enable.auto.commit", "false"}});
  rd_kafka_poll_set_consumer(consumer.get());
  rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(assignment, topic.c_str(), 0)->offset =
      RD_KAFKA_OFFSET_BEGINNING;
  ASSERT_EQ(rd_kafka_assign(consumer.get(), assignment), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(assignment);

  std::multiset<std::string> seen;
  bool saw_end = false;
  for (int polls = 0; polls < 300 && !saw_end; ++polls) {
    rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer.get(), 100);
    if (message == nullptr) continue;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::string value(static_cast<const char*>(message->payload), message->len);
      if (value == "end-0") {
        saw_end = true;
      } else {
        seen.insert(value);
      }
    } else if (message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ADD_FAILURE() << rd_kafka_message_errstr(message);
    }
    rd_kafka_message_destroy(message);
  }
  ASSERT_TRUE(saw_end) << "the committed end marker never arrived";
  EXPECT_EQ(seen, (std::multiset<std::string>{"committed-0", "committed-1", "committed-2",
                                              "committed-3", "committed-4"}));
  rd_kafka_consumer_close(consumer.get());
}

}  // namespace
}  // namespace leftfold
