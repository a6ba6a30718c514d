// The kafka backend against librdkafka's in-process mock cluster: no broker needed.
// What the mock cannot show (transaction markers, LSO) is tested in tests/kafka/log_kafka.
#include <librdkafka/rdkafka.h>
// rdkafka.h must come first.
#include <librdkafka/rdkafka_mock.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "log/errors.h"
#include "log/kafka/kafka_internal.h"
#include "log/kafka/kafka_log.h"
#include "log/kafka/mock_cluster.h"
#include "log/log.h"
#include "support/test_env.h"
#include "unit/log_kafka/kafka_test_util.h"

namespace leftfold::internal::log::kafka {
namespace {

using ::leftfold::internal::log::kafka::testing::FromStart;
using ::leftfold::internal::log::kafka::testing::PollUntil;
using ::leftfold::internal::log::kafka::testing::ReadAtLeast;
using ::leftfold::testing::UniqueName;

// Kafka protocol API keys the tests inject faults into.
constexpr int16_t kEndTxnApi = 26;
constexpr int16_t kAddOffsetsToTxnApi = 25;
constexpr int16_t kListOffsetsApi = 2;

class KafkaMockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Log>> log = OpenKafkaLogOnMockCluster(3);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
    cluster_ = MockClusterOf(*log_);
    ASSERT_NE(cluster_, nullptr);
    topic_ = UniqueName("events");
    absl::Status s = log_->admin().CreateTopics({{.name = topic_, .partitions = 3}});
    ASSERT_TRUE(s.ok()) << s;
  }

  std::unique_ptr<Producer> NewProducer(ProducerOptions options = {}) {
    absl::StatusOr<std::unique_ptr<Producer>> p = log_->NewProducer(options);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? std::move(*p) : nullptr;
  }

  std::unique_ptr<Consumer> NewConsumer(ConsumerOptions options = {}) {
    absl::StatusOr<std::unique_ptr<Consumer>> c = log_->NewConsumer(options);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  std::unique_ptr<Log> log_;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string topic_;
};

TEST_F(KafkaMockTest, BackendIsKafka) { EXPECT_EQ(log_->backend(), "kafka"); }

TEST_F(KafkaMockTest, ProduceConsumeRoundTripWithKeyPlacementAndHeaders) {
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  std::vector<std::optional<absl::StatusOr<TopicPartitionOffset>>> delivered(20);
  for (int i = 0; i < 20; ++i) {
    OutgoingRecord r{.topic = topic_,
                     .key = absl::StrCat("key-", i),
                     .value = absl::StrCat("value-", i),
                     .headers = {{"h", absl::StrCat(i)}}};
    absl::Status s = producer->Produce(std::move(r),
                                       [&delivered, i](absl::StatusOr<TopicPartitionOffset> where) {
                                         delivered[i] = std::move(where);
                                       });
    ASSERT_TRUE(s.ok()) << s;
  }
  absl::Status s = producer->Flush(absl::Seconds(30));
  ASSERT_TRUE(s.ok()) << s;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(delivered[i].has_value()) << "no delivery callback for " << i;
    ASSERT_TRUE(delivered[i]->ok()) << delivered[i]->status();
    // murmur2, as the Java client and the embedded backend place keys.
    EXPECT_EQ((*delivered[i])->tp.partition, PartitionForKey(absl::StrCat("key-", i), 3));
  }

  auto consumer = NewConsumer({.isolation = Isolation::kReadUncommitted});
  ASSERT_TRUE(consumer->Assign(FromStart(topic_, 3)).ok());
  std::vector<Record> got = ReadAtLeast(*consumer, 20, absl::Seconds(30));
  ASSERT_EQ(got.size(), 20u);
  for (const Record& r : got) {
    int i = std::stoi(r.key.substr(4));
    EXPECT_EQ(r.value, absl::StrCat("value-", i));
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0], (Header{"h", absl::StrCat(i)}));
    EXPECT_EQ(r.partition, (*delivered[i])->tp.partition);
    EXPECT_EQ(r.offset, (*delivered[i])->offset);
  }
  absl::StatusOr<std::vector<int64_t>> ends =
      log_->admin().EndOffsets(topic_, Isolation::kReadUncommitted);
  ASSERT_TRUE(ends.ok()) << ends.status();
  EXPECT_EQ((*ends)[0] + (*ends)[1] + (*ends)[2], 20);
  EXPECT_TRUE(consumer->Close().ok());
}

TEST_F(KafkaMockTest, GroupConsumerAssignsCommitsAndRevokesOnClose) {
  auto producer = NewProducer();
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(producer->Produce({.topic = topic_, .key = absl::StrCat(i), .value = "v"}).ok());
  }
  ASSERT_TRUE(producer->Flush(absl::Seconds(30)).ok());

  const std::string group = UniqueName("group");
  auto consumer = NewConsumer({.group_id = group});
  std::vector<TopicPartition> assigned, revoked;
  absl::Status s =
      consumer->Subscribe({topic_}, {.on_assigned = [&](const auto& tps) { assigned = tps; },
                                     .on_revoked = [&](const auto& tps) { revoked = tps; }});
  ASSERT_TRUE(s.ok()) << s;
  std::vector<Record> got;
  ASSERT_TRUE(PollUntil(
      *consumer, [&] { return got.size() >= 6; }, absl::Seconds(60), &got));
  EXPECT_EQ(assigned.size(), 3u);
  EXPECT_EQ(consumer->Assignment().size(), 3u);

  std::vector<TopicPartitionOffset> next;
  for (int p = 0; p < 3; ++p) {
    absl::StatusOr<int64_t> pos = consumer->Position({topic_, p});
    ASSERT_TRUE(pos.ok()) << pos.status();
    next.push_back({{topic_, p}, *pos});
  }
  ASSERT_TRUE(consumer->CommitOffsets(next).ok());
  absl::StatusOr<std::vector<TopicPartitionOffset>> committed =
      consumer->Committed({{topic_, 0}, {topic_, 1}, {topic_, 2}}, absl::Seconds(10));
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(*committed, next);

  EXPECT_TRUE(revoked.empty());
  ASSERT_TRUE(consumer->Close().ok());
  EXPECT_EQ(revoked.size(), 3u) << "Close must revoke the assignment through the listener";
  EXPECT_EQ(consumer->Poll(1, absl::Milliseconds(1)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(KafkaMockTest, SeekPauseResume) {
  auto producer = NewProducer();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        producer->Produce({.topic = topic_, .value = absl::StrCat(i), .partition = 1}).ok());
  }
  ASSERT_TRUE(producer->Flush(absl::Seconds(30)).ok());
  auto consumer = NewConsumer();
  ASSERT_TRUE(consumer->Assign({{{topic_, 1}, 0}}).ok());
  EXPECT_EQ(*consumer->Position({topic_, 1}), 0);
  ASSERT_EQ(ReadAtLeast(*consumer, 5, absl::Seconds(30)).size(), 5u);
  EXPECT_EQ(*consumer->Position({topic_, 1}), 5);

  absl::Status s = consumer->Seek({{topic_, 1}, 3});
  ASSERT_TRUE(s.ok()) << s;
  std::vector<Record> again = ReadAtLeast(*consumer, 2, absl::Seconds(30));
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].offset, 3);
  EXPECT_EQ(again[0].value, "3");

  ASSERT_TRUE(consumer->Pause({{topic_, 1}}).ok());
  ASSERT_TRUE(producer->Produce({.topic = topic_, .value = "5", .partition = 1}).ok());
  ASSERT_TRUE(producer->Flush(absl::Seconds(30)).ok());
  absl::StatusOr<std::vector<Record>> paused = consumer->Poll(10, absl::Milliseconds(500));
  ASSERT_TRUE(paused.ok());
  EXPECT_TRUE(paused->empty()) << "a paused partition delivered records";
  ASSERT_TRUE(consumer->Resume({{topic_, 1}}).ok());
  std::vector<Record> resumed = ReadAtLeast(*consumer, 1, absl::Seconds(30));
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].offset, 5);
}

TEST_F(KafkaMockTest, TransactionCommitsRecordsAndOffsets) {
  auto input = NewProducer();
  ASSERT_TRUE(input->Produce({.topic = topic_, .key = "a", .value = "cmd"}).ok());
  ASSERT_TRUE(input->Flush(absl::Seconds(30)).ok());
  const std::string out_topic = UniqueName("out");
  ASSERT_TRUE(log_->admin().CreateTopics({{.name = out_topic, .partitions = 3}}).ok());

  const std::string group = UniqueName("processor");
  auto consumer = NewConsumer({.group_id = group});
  ASSERT_TRUE(consumer->Subscribe({topic_}, {}).ok());
  std::vector<Record> in;
  ASSERT_TRUE(PollUntil(
      *consumer, [&] { return !in.empty(); }, absl::Seconds(60), &in));

  auto producer = NewProducer({.transactional_id = UniqueName("txn")});
  ASSERT_NE(producer, nullptr);
  EXPECT_EQ(ProducerGeneration(*producer), 1);
  ASSERT_TRUE(producer->BeginTransaction().ok());
  ASSERT_TRUE(producer->Produce({.topic = out_topic, .key = "a", .value = "event"}).ok());
  TopicPartitionOffset next{{topic_, in[0].partition}, in[0].offset + 1};
  absl::Status s = producer->SendOffsetsToTransaction({next}, *consumer);
  ASSERT_TRUE(s.ok()) << s;
  s = producer->CommitTransaction();
  ASSERT_TRUE(s.ok()) << s;

  // The mock (2.0.2) accepts TxnOffsetCommit but does not store the offsets, so Committed()
  // is checked on the real broker (tests/kafka/log_kafka).
  auto reader = NewConsumer();
  ASSERT_TRUE(reader->Assign(FromStart(out_topic, 3)).ok());
  std::vector<Record> got = ReadAtLeast(*reader, 1, absl::Seconds(30));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, "event");
}

// The Jepsen 2024 defence: a transactional call that times out re-creates the rd_kafka_t (its
// init_transactions fences the old epoch), says ABORTED, and the next transaction works.
TEST_F(KafkaMockTest, CommitTimeoutRecreatesProducerAndNextTransactionCommits) {
  const std::string txn_id = UniqueName("txn");
  ASSERT_EQ(rd_kafka_mock_coordinator_set(cluster_, "transaction", txn_id.c_str(), 1),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  auto producer = NewProducer({.transactional_id = txn_id, .call_timeout = absl::Seconds(2)});
  ASSERT_NE(producer, nullptr);
  ASSERT_EQ(ProducerGeneration(*producer), 1);

  ASSERT_TRUE(producer->BeginTransaction().ok());
  int failed_deliveries = 0, delivered = 0;
  auto count = [&](absl::StatusOr<TopicPartitionOffset> r) {
    r.ok() ? ++delivered : ++failed_deliveries;
  };
  ASSERT_TRUE(producer->Produce({.topic = topic_, .key = "k", .value = "lost"}, count).ok());
  // The coordinator answers the next EndTxn after 6 s: longer than call_timeout.
  ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(cluster_, 1, kEndTxnApi, 1,
                                                         RD_KAFKA_RESP_ERR_NO_ERROR, 6000),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  absl::Time start = absl::Now();
  absl::Status s = producer->CommitTransaction();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << "commit was not bounded by call_timeout";
  EXPECT_EQ(ClassifyError(s), ErrorClass::kAbortable) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "commit_transaction")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "re-created")) << s;
  EXPECT_EQ(ProducerGeneration(*producer), 2);
  EXPECT_EQ(delivered + failed_deliveries, 1) << "the record's callback must run exactly once";

  // The caller aborts (a no-op now) and redoes the batch on the fresh producer.
  EXPECT_TRUE(producer->AbortTransaction().ok());
  ASSERT_TRUE(producer->BeginTransaction().ok());
  std::optional<absl::StatusOr<TopicPartitionOffset>> where;
  ASSERT_TRUE(producer
                  ->Produce({.topic = topic_, .key = "k", .value = "redo"},
                            [&](auto r) { where = std::move(r); })
                  .ok());
  s = producer->CommitTransaction();
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(where.has_value());
  ASSERT_TRUE(where->ok()) << where->status();
  EXPECT_EQ(ProducerGeneration(*producer), 2);

  auto reader = NewConsumer();
  ASSERT_TRUE(reader->Assign({{(*where)->tp, (*where)->offset}}).ok());
  std::vector<Record> got = ReadAtLeast(*reader, 1, absl::Seconds(30));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, "redo");
}

TEST_F(KafkaMockTest, SendOffsetsTimeoutRecreatesProducer) {
  const std::string txn_id = UniqueName("txn");
  const std::string group = UniqueName("group");
  ASSERT_EQ(rd_kafka_mock_coordinator_set(cluster_, "transaction", txn_id.c_str(), 2),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  auto consumer = NewConsumer({.group_id = group});
  ASSERT_TRUE(consumer->Subscribe({topic_}, {}).ok());
  ASSERT_TRUE(PollUntil(
      *consumer, [&] { return consumer->Assignment().size() == 3; }, absl::Seconds(60)));
  auto producer = NewProducer({.transactional_id = txn_id, .call_timeout = absl::Seconds(2)});
  ASSERT_NE(producer, nullptr);
  ASSERT_TRUE(producer->BeginTransaction().ok());
  ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(cluster_, 2, kAddOffsetsToTxnApi, 1,
                                                         RD_KAFKA_RESP_ERR_NO_ERROR, 6000),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  absl::Status s = producer->SendOffsetsToTransaction({{{topic_, 0}, 0}}, *consumer);
  EXPECT_EQ(ClassifyError(s), ErrorClass::kAbortable) << s;
  EXPECT_EQ(ProducerGeneration(*producer), 2);
  ASSERT_TRUE(producer->AbortTransaction().ok());
  ASSERT_TRUE(producer->BeginTransaction().ok());
  s = producer->SendOffsetsToTransaction({{{topic_, 0}, 0}}, *consumer);
  ASSERT_TRUE(s.ok()) << s;
  s = producer->CommitTransaction();
  ASSERT_TRUE(s.ok()) << s;
}

// The mock (2.0.2) does not check producer epochs, so the broker's fencing answer is injected;
// two producers sharing a transactional.id are tested on the real broker.
TEST_F(KafkaMockTest, FencedProducerIsFatal) {
  auto producer = NewProducer({.transactional_id = UniqueName("txn")});
  ASSERT_NE(producer, nullptr);
  ASSERT_TRUE(producer->BeginTransaction().ok());
  ASSERT_TRUE(producer->Produce({.topic = topic_, .key = "k", .value = "zombie"}).ok());
  rd_kafka_mock_push_request_errors(cluster_, kEndTxnApi, 1, RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
  absl::Status s = producer->CommitTransaction();
  EXPECT_EQ(ClassifyError(s), ErrorClass::kFatal) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "commit_transaction")) << s;
  // Fatal sticks: the instance must stop, nothing it does succeeds any more.
  s = producer->BeginTransaction();
  EXPECT_EQ(ClassifyError(s), ErrorClass::kFatal) << s;
  EXPECT_EQ(ProducerGeneration(*producer), 1) << "fencing must not re-create the producer";
}

TEST_F(KafkaMockTest, BadInputFailsAtOnce) {
  auto producer = NewProducer();
  absl::Time start = absl::Now();
  absl::Status s = producer->Produce({.topic = UniqueName("no-such-topic"), .value = "v"});
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_EQ(ClassifyError(s), ErrorClass::kInvalid);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));

  s = producer->Produce({.topic = topic_, .value = std::string(2'000'000, 'x')});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "message.max.bytes")) << s;

  s = producer->Produce({.topic = topic_, .value = "v", .partition = 3});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;

  ASSERT_TRUE(producer->Close().ok());
  s = producer->Produce({.topic = topic_, .value = "v"});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(producer->Flush(absl::Seconds(1)).code(), absl::StatusCode::kFailedPrecondition);

  auto plain = NewProducer();
  EXPECT_EQ(plain->BeginTransaction().code(), absl::StatusCode::kFailedPrecondition);
}

// A Consumer of some other backend.
class FakeConsumer final : public Consumer {
 public:
  absl::Status Subscribe(const std::vector<std::string>&, RebalanceListener) override {
    return absl::OkStatus();
  }
  absl::Status Assign(const std::vector<TopicPartitionOffset>&) override {
    return absl::OkStatus();
  }
  std::vector<TopicPartition> Assignment() const override { return {}; }
  absl::StatusOr<std::vector<Record>> Poll(size_t, absl::Duration) override {
    return std::vector<Record>{};
  }
  absl::Status Seek(const TopicPartitionOffset&) override { return absl::OkStatus(); }
  absl::Status Pause(const std::vector<TopicPartition>&) override { return absl::OkStatus(); }
  absl::Status Resume(const std::vector<TopicPartition>&) override { return absl::OkStatus(); }
  absl::StatusOr<int64_t> Position(const TopicPartition&) const override { return 0; }
  absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(const std::vector<TopicPartition>&,
                                                              absl::Duration) override {
    return std::vector<TopicPartitionOffset>{};
  }
  absl::Status CommitOffsets(const std::vector<TopicPartitionOffset>&) override {
    return absl::OkStatus();
  }
  absl::Status Close() override { return absl::OkStatus(); }
};

TEST_F(KafkaMockTest, SendOffsetsNeedsAKafkaGroupConsumer) {
  auto producer = NewProducer({.transactional_id = UniqueName("txn")});
  ASSERT_TRUE(producer->BeginTransaction().ok());
  FakeConsumer fake;
  EXPECT_EQ(producer->SendOffsetsToTransaction({{{topic_, 0}, 1}}, fake).code(),
            absl::StatusCode::kInvalidArgument);
  auto groupless = NewConsumer();
  EXPECT_EQ(producer->SendOffsetsToTransaction({{{topic_, 0}, 1}}, *groupless).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(producer->AbortTransaction().ok());
}

TEST_F(KafkaMockTest, AdminTopics) {
  Admin& admin = log_->admin();
  EXPECT_EQ(*admin.PartitionCount(topic_), 3);
  EXPECT_EQ(admin.PartitionCount(UniqueName("missing")).status().code(),
            absl::StatusCode::kNotFound);
  // Existing topics are left alone, not an error.
  EXPECT_TRUE(admin.CreateTopics({{.name = topic_, .partitions = 5}}).ok());
  EXPECT_EQ(*admin.PartitionCount(topic_), 3);
  absl::StatusOr<std::vector<int64_t>> ends = admin.EndOffsets(topic_, Isolation::kReadCommitted);
  ASSERT_TRUE(ends.ok()) << ends.status();
  EXPECT_EQ(*ends, (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(admin.EndOffsets(UniqueName("missing"), Isolation::kReadCommitted).status().code(),
            absl::StatusCode::kNotFound);
}

// Records 3 to partition 0 and 5 to partition 1 of the fixture's topic; partition 2 stays empty.
void ProduceThreeAndFive(Producer& producer, const std::string& topic) {
  for (int32_t p : {0, 0, 0, 1, 1, 1, 1, 1}) {
    ASSERT_TRUE(producer.Produce({.topic = topic, .value = "v", .partition = p}).ok());
  }
  absl::Status s = producer.Flush(absl::Seconds(30));
  ASSERT_TRUE(s.ok()) << s;
}

// The next `n` ListOffsets requests fail with `err`. A watermark query sends two (low and high
// watermark), so tests inject in pairs: librdkafka 2.0.2 loses the low request's error when the
// high one succeeds in the same batch, and answers low = high.
void FailListOffsets(rd_kafka_mock_cluster_t* cluster, int n, rd_kafka_resp_err_t err) {
  for (int i = 0; i < n; ++i) rd_kafka_mock_push_request_errors(cluster, kListOffsetsApi, 1, err);
}

// librdkafka returns UNKNOWN_TOPIC_OR_PART and NOT_LEADER_FOR_PARTITION from ListOffsets at once,
// and LEADER_NOT_AVAILABLE after two retries of its own: 6 errors outlast those.
TEST_F(KafkaMockTest, EndOffsetsRetriesLaggingListOffsets) {
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  ProduceThreeAndFive(*producer, topic_);
  for (auto [err, n] : {std::pair{RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, 4},
                        std::pair{RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 4},
                        std::pair{RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, 6}}) {
    FailListOffsets(cluster_, n, err);
    absl::StatusOr<std::vector<int64_t>> ends =
        log_->admin().EndOffsets(topic_, Isolation::kReadUncommitted);
    ASSERT_TRUE(ends.ok()) << rd_kafka_err2name(err) << ": " << ends.status();
    EXPECT_EQ(*ends, (std::vector<int64_t>{3, 5, 0})) << rd_kafka_err2name(err);
  }
}

// Position of a partition never read, with no group: the watermark fallback.
TEST_F(KafkaMockTest, PositionWatermarkFallbackRetriesLaggingListOffsets) {
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  ProduceThreeAndFive(*producer, topic_);
  auto earliest = NewConsumer({.isolation = Isolation::kReadUncommitted});
  auto latest =
      NewConsumer({.isolation = Isolation::kReadUncommitted, .start_from_earliest = false});
  ASSERT_NE(earliest, nullptr);
  ASSERT_NE(latest, nullptr);
  for (auto [err, n] : {std::pair{RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, 4},
                        std::pair{RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 4},
                        std::pair{RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, 6}}) {
    FailListOffsets(cluster_, n, err);
    absl::StatusOr<int64_t> pos = latest->Position({topic_, 1});
    ASSERT_TRUE(pos.ok()) << rd_kafka_err2name(err) << ": " << pos.status();
    EXPECT_EQ(*pos, 5) << rd_kafka_err2name(err);

    FailListOffsets(cluster_, n, err);
    pos = earliest->Position({topic_, 1});
    ASSERT_TRUE(pos.ok()) << rd_kafka_err2name(err) << ": " << pos.status();
    EXPECT_EQ(*pos, 0) << rd_kafka_err2name(err);
  }
}

TEST_F(KafkaMockTest, ListOffsetsNotAuthorizedFailsAtOnce) {
  auto consumer = NewConsumer();
  ASSERT_NE(consumer, nullptr);
  absl::Time start = absl::Now();
  FailListOffsets(cluster_, 2, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  absl::StatusOr<std::vector<int64_t>> ends =
      log_->admin().EndOffsets(topic_, Isolation::kReadCommitted);
  EXPECT_EQ(ends.status().code(), absl::StatusCode::kPermissionDenied) << ends.status();
  FailListOffsets(cluster_, 2, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  absl::StatusOr<int64_t> pos = consumer->Position({topic_, 0});
  EXPECT_EQ(pos.status().code(), absl::StatusCode::kPermissionDenied) << pos.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(KafkaLogOpen, FailsUnavailableWhenNoBrokerAnswers) {
  absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<Log>> log = OpenKafkaLog(
      {.brokers = "127.0.0.1:1", .kafka_properties = {{"leftfold.connect.timeout.ms", "1000"}}});
  EXPECT_EQ(log.status().code(), absl::StatusCode::kUnavailable) << log.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(KafkaLogOpen, RejectsUnknownKafkaProperty) {
  absl::StatusOr<std::unique_ptr<Log>> log =
      OpenKafkaLogOnMockCluster(1, {.kafka_properties = {{"no.such.property", "1"}}});
  EXPECT_EQ(log.status().code(), absl::StatusCode::kInvalidArgument) << log.status();
}

}  // namespace
}  // namespace leftfold::internal::log::kafka
