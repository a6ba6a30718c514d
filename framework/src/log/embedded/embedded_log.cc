#include "log/embedded/embedded_log.h"

#include "log/embedded/clients.h"
#include "log/embedded/store.h"

namespace leftfold::internal::log::embedded {
namespace {

class EmbeddedAdmin final : public Admin {
 public:
  explicit EmbeddedAdmin(LogStore* store) : store_(store) {}

  absl::Status CreateTopics(const std::vector<TopicSpec>& topics) override {
    return store_->CreateTopics(topics);
  }

  absl::StatusOr<int32_t> PartitionCount(const std::string& topic) override {
    absl::StatusOr<std::shared_ptr<TopicState>> state = store_->FindTopic(topic);
    if (!state.ok()) return state.status();
    return (*state)->partition_count;
  }

  // read_committed: the last stable offset (stops at the lowest open reservation);
  // read_uncommitted: the high watermark (past every reserved or written offset).
  absl::StatusOr<std::vector<int64_t>> EndOffsets(const std::string& topic,
                                                  Isolation isolation) override {
    absl::StatusOr<std::shared_ptr<TopicState>> state = store_->FindTopic(topic);
    if (!state.ok()) return state.status();
    std::vector<int64_t> ends;
    for (const auto& p : (*state)->partitions) {
      ends.push_back(isolation == Isolation::kReadCommitted ? p->end.load() : p->next.load());
    }
    return ends;
  }

  absl::Status DeleteTopics(const std::vector<std::string>& topics) override {
    return store_->DeleteTopics(topics);
  }

 private:
  LogStore* const store_;
};

class EmbeddedLog final : public Log {
 public:
  explicit EmbeddedLog(std::unique_ptr<LogStore> store)
      : store_(std::move(store)), admin_(store_.get()) {}

  absl::StatusOr<std::unique_ptr<Producer>> NewProducer(const ProducerOptions& options) override {
    return std::make_unique<EmbeddedProducer>(store_.get(), options);
  }

  absl::StatusOr<std::unique_ptr<Consumer>> NewConsumer(const ConsumerOptions& options) override {
    return std::make_unique<EmbeddedConsumer>(store_.get(), options);
  }

  Admin& admin() override { return admin_; }
  std::string_view backend() const override { return "embedded"; }

 private:
  std::unique_ptr<LogStore> store_;
  EmbeddedAdmin admin_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Log>> OpenEmbeddedLog(const LogOptions& options) {
  EmbeddedOptions embedded;
  embedded.sync_commits = options.embedded_fsync;
  return OpenEmbeddedLog(options, embedded);
}

absl::StatusOr<std::unique_ptr<Log>> OpenEmbeddedLog(const LogOptions& options,
                                                     const EmbeddedOptions& embedded) {
  absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(options.embedded_dir, embedded);
  if (!store.ok()) return store.status();
  return std::make_unique<EmbeddedLog>(*std::move(store));
}

}  // namespace leftfold::internal::log::embedded
