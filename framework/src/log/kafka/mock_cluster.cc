#include "log/kafka/mock_cluster.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "log/kafka/client.h"
#include "log/kafka/kafka_internal.h"

namespace leftfold::internal::log::kafka {
namespace {

struct MockClusterDeleter {
  void operator()(rd_kafka_mock_cluster_t* p) const { rd_kafka_mock_cluster_destroy(p); }
};

// Owns the mock cluster (and the rd_kafka_t librdkafka requires to host it) for the lifetime of
// the Log it wraps. Member order matters: the Log goes first, then the cluster, then its handle.
class MockClusterLog final : public Log {
 public:
  MockClusterLog(HandlePtr host,
                 std::unique_ptr<rd_kafka_mock_cluster_t, MockClusterDeleter> cluster)
      : host_(std::move(host)), cluster_(std::move(cluster)) {}

  void set_inner(std::unique_ptr<Log> inner) { inner_ = std::move(inner); }
  rd_kafka_mock_cluster_t* cluster() const { return cluster_.get(); }

  absl::StatusOr<std::unique_ptr<Producer>> NewProducer(const ProducerOptions& options) override {
    return inner_->NewProducer(options);
  }
  absl::StatusOr<std::unique_ptr<Consumer>> NewConsumer(const ConsumerOptions& options) override {
    return inner_->NewConsumer(options);
  }
  Admin& admin() override { return inner_->admin(); }
  std::string_view backend() const override { return inner_->backend(); }

 private:
  HandlePtr host_;
  std::unique_ptr<rd_kafka_mock_cluster_t, MockClusterDeleter> cluster_;
  std::unique_ptr<Log> inner_;
};

struct KnownTopics {
  absl::Mutex mu;
  absl::flat_hash_set<std::string> names ABSL_GUARDED_BY(mu);
};

}  // namespace

absl::StatusOr<std::unique_ptr<Log>> OpenKafkaLogOnMockCluster(int brokers,
                                                               const LogOptions& options) {
  if (brokers < 1) return absl::InvalidArgumentError("mock cluster needs at least one broker");
  ConfPtr conf(rd_kafka_conf_new());
  absl::StatusOr<HandlePtr> host = NewHandle(RD_KAFKA_PRODUCER, std::move(conf));
  if (!host.ok()) return host.status();
  std::unique_ptr<rd_kafka_mock_cluster_t, MockClusterDeleter> cluster(
      rd_kafka_mock_cluster_new(host->get(), brokers));
  if (cluster == nullptr) return absl::InternalError("rd_kafka_mock_cluster_new failed");
  rd_kafka_mock_cluster_t* mock = cluster.get();
  auto log = std::make_unique<MockClusterLog>(std::move(*host), std::move(cluster));

  LogOptions inner_options = options;
  inner_options.brokers = rd_kafka_mock_cluster_bootstraps(mock);
  AdminOverrides overrides;
  // Replication is capped by the broker count; topic configs have no meaning to the mock.
  // The mock creates any topic a metadata request names; the topics created through admin are
  // the ones that exist as far as the Log is concerned.
  auto known = std::make_shared<KnownTopics>();
  overrides.create_topic = [mock, brokers, known](const TopicSpec& spec) {
    absl::MutexLock lock(&known->mu);
    if (known->names.contains(spec.name)) return absl::OkStatus();  // left as it is
    absl::Status s =
        StatusFromCode(absl::StrCat("mock create topic ", spec.name),
                       rd_kafka_mock_topic_create(mock, spec.name.c_str(), spec.partitions,
                                                  brokers < 3 ? brokers : 3));
    if (s.ok()) known->names.insert(spec.name);
    return s;
  };
  overrides.topic_known = [known](const std::string& topic) {
    absl::MutexLock lock(&known->mu);
    return known->names.contains(topic);
  };
  overrides.delete_topic = [](const std::string& topic) {
    return absl::UnimplementedError(
        absl::StrCat("delete topic ", topic, ": the librdkafka mock cluster cannot delete topics"));
  };
  absl::StatusOr<std::unique_ptr<Log>> inner =
      OpenKafkaLogWithOverrides(inner_options, std::move(overrides));
  if (!inner.ok()) return inner.status();
  log->set_inner(std::move(*inner));
  return log;
}

rd_kafka_mock_cluster_t* MockClusterOf(Log& log) {
  auto* mock = dynamic_cast<MockClusterLog*>(&log);
  return mock == nullptr ? nullptr : mock->cluster();
}

}  // namespace leftfold::internal::log::kafka
