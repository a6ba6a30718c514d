// Throughput of the Log backends, with a plain librdkafka baseline measured in the same run.
//
//   LEFTFOLD_BENCH_BROKERS=127.0.0.1:9092 leftfold_log_bench --benchmark_repetitions=3
//
// Cases (100-byte values, keys spread over a 4-partition topic):
//   produce_txn/<backend>   transactional produce, one transaction per 1,000 records
//   consume/<backend>       read_committed consume of a pre-filled topic from its start
// Backends: embedded (a temp directory), kafka (the leftfold kafka backend), raw_librdkafka (the C
// API with the same client settings; the yardstick the kafka backend is held to). Without
// LEFTFOLD_BENCH_BROKERS only the embedded cases run. Items/s is the figure to compare;
// tools/bench/run-log-bench prints the ratios.
#include <benchmark/benchmark.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "log/embedded/embedded_log.h"
#include "log/kafka/kafka_log.h"
#include "log/log.h"

namespace leftfold::internal::log {
namespace {

constexpr int kTransactionRecords = 1000;
constexpr size_t kValueBytes = 100;
constexpr int32_t kPartitions = 4;
constexpr int kKeys = 1024;
// Records in the topic the consume cases read: enough for a few hundred ms per pass.
constexpr int kPrefillRecords = 200000;
constexpr absl::Duration kTimeout = absl::Seconds(60);

// Client settings both the kafka backend and the raw baseline get, so they are compared like for
// like. Idempotence and transactions come from transactional.id on both sides.
const std::map<std::string, std::string>& KafkaSettings() {
  static const auto* settings = new std::map<std::string, std::string>{
      {"linger.ms", "5"},
      {"batch.size", "1000000"},
      {"compression.type", "none"},
  };
  return *settings;
}

std::string Brokers() {
  const char* brokers = std::getenv("LEFTFOLD_BENCH_BROKERS");
  return brokers == nullptr ? "" : brokers;
}

std::string RunId() {
  static const std::string id = absl::StrCat(std::random_device{}() % 1000000);
  return id;
}

const std::vector<std::string>& Keys() {
  static const auto* keys = [] {
    auto* k = new std::vector<std::string>;
    for (int i = 0; i < kKeys; ++i) k->push_back(absl::StrCat("key-", i));
    return k;
  }();
  return *keys;
}

const std::string& Value() {
  static const std::string* value = new std::string(kValueBytes, 'v');
  return *value;
}

// The Logs the cases share, opened on first use and closed by main before exit (RocksDB and
// librdkafka must not be torn down by static destructors).
struct Logs {
  std::string embedded_dir;
  std::unique_ptr<Log> embedded;
  std::unique_ptr<Log> kafka;
  std::map<std::string, std::string> prefilled;  // backend -> topic with kPrefillRecords
};
Logs& SharedLogs() {
  static Logs* logs = new Logs;
  return *logs;
}

enum class Backend { kEmbedded, kKafka, kRawLibrdkafka };

absl::StatusOr<Log*> GetLog(Backend backend) {
  Logs& logs = SharedLogs();
  if (backend == Backend::kEmbedded) {
    if (logs.embedded == nullptr) {
      logs.embedded_dir =
          (std::filesystem::temp_directory_path() / absl::StrCat("leftfold-log-bench-", RunId()))
              .string();
      absl::StatusOr<std::unique_ptr<Log>> log =
          embedded::OpenEmbeddedLog(LogOptions{.embedded_dir = logs.embedded_dir});
      if (!log.ok()) return log.status();
      logs.embedded = std::move(*log);
    }
    return logs.embedded.get();
  }
  if (logs.kafka == nullptr) {
    absl::StatusOr<std::unique_ptr<Log>> log =
        kafka::OpenKafkaLog(LogOptions{.brokers = Brokers(), .kafka_properties = KafkaSettings()});
    if (!log.ok()) return log.status();
    logs.kafka = std::move(*log);
  }
  return logs.kafka.get();
}

absl::StatusOr<std::string> NewTopic(Log& log, const std::string& purpose) {
  const std::string topic = absl::StrCat("bench-", purpose, "-", RunId());
  absl::Status created = log.admin().CreateTopics({{.name = topic, .partitions = kPartitions}});
  if (!created.ok()) return created;
  const absl::Time deadline = absl::Now() + kTimeout;
  while (absl::Now() < deadline) {
    absl::StatusOr<int32_t> count = log.admin().PartitionCount(topic);
    if (count.ok() && *count == kPartitions) return topic;
    absl::SleepFor(absl::Milliseconds(10));  // polling a condition; Kafka metadata lags creation
  }
  return absl::DeadlineExceededError(absl::StrCat("topic ", topic, " did not appear"));
}

// --- plain librdkafka -------------------------------------------------------------------------

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

// `delivery_errors` (producers only) counts failed deliveries.
absl::StatusOr<KafkaHandle> NewRawClient(rd_kafka_type_t type,
                                         std::map<std::string, std::string> properties,
                                         int64_t* delivery_errors = nullptr) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  properties["bootstrap.servers"] = Brokers();
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(absl::StrCat(key, ": ", err));
    }
  }
  if (type == RD_KAFKA_PRODUCER) {
    rd_kafka_conf_set_opaque(conf, delivery_errors);
    // A delivery-report callback, as any real producer has; it only counts failures.
    rd_kafka_conf_set_dr_msg_cb(conf,
                                [](rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
                                  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR)
                                    ++*static_cast<int64_t*>(opaque);
                                });
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof(err));
  if (rk == nullptr) return absl::InternalError(err);
  return KafkaHandle(rk);
}

absl::Status FromError(rd_kafka_error_t* error, const char* what) {
  if (error == nullptr) return absl::OkStatus();
  absl::Status status = absl::InternalError(absl::StrCat(what, ": ", rd_kafka_error_string(error)));
  rd_kafka_error_destroy(error);
  return status;
}

// One transaction of kTransactionRecords records, the plain librdkafka way.
absl::Status RawTransaction(rd_kafka_t* rk, const std::string& topic) {
  absl::Status status = FromError(rd_kafka_begin_transaction(rk), "begin");
  for (int i = 0; i < kTransactionRecords && status.ok(); ++i) {
    const std::string& key = Keys()[i % kKeys];
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(Value().data()), Value().size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk, 10);
        continue;
      }
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        status = absl::InternalError(rd_kafka_err2str(err));
      }
      break;
    }
  }
  if (status.ok()) status = FromError(rd_kafka_commit_transaction(rk, 60000), "commit");
  return status;
}

void BM_RawProduceTransactional(benchmark::State& state, const std::string& topic) {
  int64_t delivery_errors = 0;
  std::map<std::string, std::string> properties = KafkaSettings();
  properties["transactional.id"] = absl::StrCat("bench-raw-", RunId());
  properties["enable.idempotence"] = "true";
  properties["partitioner"] = "murmur2_random";  // the placement the Log uses
  absl::StatusOr<KafkaHandle> producer =
      NewRawClient(RD_KAFKA_PRODUCER, properties, &delivery_errors);
  if (!producer.ok()) return state.SkipWithError(producer.status().ToString().c_str());
  rd_kafka_t* rk = producer->get();
  absl::Status status = FromError(rd_kafka_init_transactions(rk, 60000), "init_transactions");
  // One untimed transaction first (the Log case does the same): the first one also finds the
  // coordinator and registers the partitions, which takes up to a second.
  if (status.ok()) status = RawTransaction(rk, topic);
  for (auto _ : state) {
    if (!status.ok()) break;
    status = RawTransaction(rk, topic);
  }
  if (status.ok() && delivery_errors > 0) {
    status = absl::InternalError(absl::StrCat(delivery_errors, " delivery errors"));
  }
  if (!status.ok()) return state.SkipWithError(status.ToString().c_str());
  state.SetItemsProcessed(state.iterations() * kTransactionRecords);
  state.SetBytesProcessed(state.iterations() * kTransactionRecords * kValueBytes);
}

void BM_RawConsume(benchmark::State& state, const std::string& topic) {
  absl::Status status;
  for (auto _ : state) {
    state.PauseTiming();
    absl::StatusOr<KafkaHandle> consumer =
        NewRawClient(RD_KAFKA_CONSUMER, {{"group.id", absl::StrCat("bench-raw-", RunId())},
                                         {"isolation.level", "read_committed"},
                                         {"enable.auto.commit", "false"},
                                         {"enable.partition.eof", "false"}});
    if (!consumer.ok()) {
      status = consumer.status();
      break;
    }
    rd_kafka_t* rk = consumer->get();
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(kPartitions);
    for (int32_t p = 0; p < kPartitions; ++p) {
      rd_kafka_topic_partition_list_add(assignment, topic.c_str(), p)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(rk, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
    state.ResumeTiming();

    int read = 0;
    const absl::Time deadline = absl::Now() + kTimeout;
    while (read < kPrefillRecords && status.ok()) {
      rd_kafka_message_t* message = rd_kafka_consumer_poll(rk, 100);
      if (message != nullptr) {
        if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          benchmark::DoNotOptimize(message->payload);
          ++read;
        } else {
          status = absl::InternalError(rd_kafka_message_errstr(message));
        }
        rd_kafka_message_destroy(message);
      } else if (absl::Now() > deadline) {
        status = absl::DeadlineExceededError(absl::StrCat("read ", read, " records"));
      }
    }

    state.PauseTiming();
    rd_kafka_consumer_close(rk);
    consumer->reset();
    state.ResumeTiming();
    if (!status.ok()) break;
  }
  if (!status.ok()) return state.SkipWithError(status.ToString().c_str());
  state.SetItemsProcessed(state.iterations() * kPrefillRecords);
  state.SetBytesProcessed(state.iterations() * kPrefillRecords * kValueBytes);
}

// --- the Log ----------------------------------------------------------------------------------

absl::Status ProduceTransaction(Producer& producer, const std::string& topic) {
  absl::Status status = producer.BeginTransaction();
  for (int i = 0; i < kTransactionRecords && status.ok(); ++i) {
    status = producer.Produce(
        OutgoingRecord{.topic = topic, .key = Keys()[i % kKeys], .value = Value()});
  }
  if (!status.ok()) return status;
  return producer.CommitTransaction();
}

void BM_LogProduceTransactional(benchmark::State& state, Backend backend) {
  absl::StatusOr<Log*> log = GetLog(backend);
  if (!log.ok()) return state.SkipWithError(log.status().ToString().c_str());
  static std::map<Backend, std::string>* topics = new std::map<Backend, std::string>;
  if (!topics->contains(backend)) {
    absl::StatusOr<std::string> topic = NewTopic(**log, "produce");
    if (!topic.ok()) return state.SkipWithError(topic.status().ToString().c_str());
    (*topics)[backend] = *topic;
  }
  const std::string& topic = (*topics)[backend];
  static int producer_number = 0;
  absl::StatusOr<std::unique_ptr<Producer>> producer = (*log)->NewProducer(
      {.transactional_id = absl::StrCat("bench-log-", RunId(), "-", producer_number++),
       .kafka_properties = KafkaSettings()});
  if (!producer.ok()) return state.SkipWithError(producer.status().ToString().c_str());
  // One untimed transaction first, as in the raw case.
  absl::Status status = ProduceTransaction(**producer, topic);
  for (auto _ : state) {
    if (!status.ok()) break;
    status = ProduceTransaction(**producer, topic);
  }
  (*producer)->Close().IgnoreError();
  if (!status.ok()) return state.SkipWithError(status.ToString().c_str());
  state.SetItemsProcessed(state.iterations() * kTransactionRecords);
  state.SetBytesProcessed(state.iterations() * kTransactionRecords * kValueBytes);
}

// The topic the consume cases read, filled once per backend (kafka and the raw consumer share it).
absl::StatusOr<std::string> PrefilledTopic(Backend backend) {
  absl::StatusOr<Log*> log = GetLog(backend);
  if (!log.ok()) return log.status();
  const std::string name = backend == Backend::kEmbedded ? "embedded" : "kafka";
  auto& prefilled = SharedLogs().prefilled;
  if (auto it = prefilled.find(name); it != prefilled.end()) return it->second;
  absl::StatusOr<std::string> topic = NewTopic(**log, "consume");
  if (!topic.ok()) return topic.status();
  absl::StatusOr<std::unique_ptr<Producer>> producer =
      (*log)->NewProducer({.transactional_id = absl::StrCat("bench-fill-", RunId()),
                           .kafka_properties = KafkaSettings()});
  if (!producer.ok()) return producer.status();
  for (int i = 0; i < kPrefillRecords / kTransactionRecords; ++i) {
    absl::Status status = ProduceTransaction(**producer, *topic);
    if (!status.ok()) return status;
  }
  absl::Status closed = (*producer)->Close();
  if (!closed.ok()) return closed;
  prefilled[name] = *topic;
  return *topic;
}

void BM_LogConsume(benchmark::State& state, Backend backend) {
  absl::StatusOr<std::string> topic = PrefilledTopic(backend);
  if (!topic.ok()) return state.SkipWithError(topic.status().ToString().c_str());
  Log& log = **GetLog(backend);
  absl::Status status;
  for (auto _ : state) {
    state.PauseTiming();
    absl::StatusOr<std::unique_ptr<Consumer>> consumer = log.NewConsumer(
        {.isolation = Isolation::kReadCommitted, .kafka_properties = KafkaSettings()});
    if (!consumer.ok()) {
      status = consumer.status();
      break;
    }
    std::vector<TopicPartitionOffset> from_start;
    for (int32_t p = 0; p < kPartitions; ++p) from_start.push_back({{*topic, p}, 0});
    status = (*consumer)->Assign(from_start);
    state.ResumeTiming();

    int read = 0;
    const absl::Time deadline = absl::Now() + kTimeout;
    while (read < kPrefillRecords && status.ok()) {
      absl::StatusOr<std::vector<Record>> batch = (*consumer)->Poll(10000, absl::Milliseconds(100));
      if (!batch.ok()) {
        status = batch.status();
      } else {
        read += static_cast<int>(batch->size());
        benchmark::DoNotOptimize(batch->data());
        if (absl::Now() > deadline) {
          status = absl::DeadlineExceededError(absl::StrCat("read ", read, " records"));
        }
      }
    }

    state.PauseTiming();
    (*consumer)->Close().IgnoreError();
    consumer->reset();
    state.ResumeTiming();
    if (!status.ok()) break;
  }
  if (!status.ok()) return state.SkipWithError(status.ToString().c_str());
  state.SetItemsProcessed(state.iterations() * kPrefillRecords);
  state.SetBytesProcessed(state.iterations() * kPrefillRecords * kValueBytes);
}

void BM_RawProduce(benchmark::State& state) {
  static std::string* topic = nullptr;
  if (topic == nullptr) {
    absl::StatusOr<Log*> log = GetLog(Backend::kKafka);
    if (!log.ok()) return state.SkipWithError(log.status().ToString().c_str());
    absl::StatusOr<std::string> created = NewTopic(**log, "produce-raw");
    if (!created.ok()) return state.SkipWithError(created.status().ToString().c_str());
    topic = new std::string(*created);
  }
  BM_RawProduceTransactional(state, *topic);
}

void BM_RawConsumePrefilled(benchmark::State& state) {
  absl::StatusOr<std::string> topic = PrefilledTopic(Backend::kKafka);
  if (!topic.ok()) return state.SkipWithError(topic.status().ToString().c_str());
  BM_RawConsume(state, *topic);
}

void Register() {
  auto configure = [](benchmark::internal::Benchmark* b) {
    b->UseRealTime()->Unit(benchmark::kMillisecond);
    // docs/benchmarks.md reports median, min and max of the repetitions.
    b->ComputeStatistics(
        "min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); });
    b->ComputeStatistics(
        "max", [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); });
  };
  configure(benchmark::RegisterBenchmark("produce_txn/embedded", BM_LogProduceTransactional,
                                         Backend::kEmbedded));
  configure(benchmark::RegisterBenchmark("consume/embedded", BM_LogConsume, Backend::kEmbedded));
  if (Brokers().empty()) {
    std::fprintf(stderr,
                 "LEFTFOLD_BENCH_BROKERS is not set: skipping the kafka and raw_librdkafka "
                 "cases\n");
    return;
  }
  configure(benchmark::RegisterBenchmark("produce_txn/kafka", BM_LogProduceTransactional,
                                         Backend::kKafka));
  configure(benchmark::RegisterBenchmark("produce_txn/raw_librdkafka", BM_RawProduce));
  configure(benchmark::RegisterBenchmark("consume/kafka", BM_LogConsume, Backend::kKafka));
  configure(benchmark::RegisterBenchmark("consume/raw_librdkafka", BM_RawConsumePrefilled));
}

}  // namespace
}  // namespace leftfold::internal::log

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  leftfold::internal::log::Register();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  auto& logs = leftfold::internal::log::SharedLogs();
  logs.kafka.reset();
  logs.embedded.reset();
  if (!logs.embedded_dir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(logs.embedded_dir, ignored);
  }
  return 0;
}
