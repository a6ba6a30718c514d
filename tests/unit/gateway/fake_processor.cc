#include "fake_processor.h"

#include <optional>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/wrappers.pb.h"

namespace leftfold::testing {

namespace log = internal::log;

google::protobuf::Any FakeProcessor::Payload(const std::string& what) {
  google::protobuf::StringValue v;
  v.set_value(what);
  google::protobuf::Any any;
  any.PackFrom(v);
  return any;
}

absl::Status FakeProcessor::Start() {
  auto producer = log_.NewProducer({});
  if (!producer.ok()) return producer.status();
  producer_ = *std::move(producer);
  auto count = log_.admin().PartitionCount(topics_.commands);
  if (!count.ok()) return count.status();
  std::vector<log::TopicPartitionOffset> start;
  for (int32_t p = 0; p < *count; ++p) start.push_back({{topics_.commands, p}, 0});
  auto consumer = log_.NewConsumer({});
  if (!consumer.ok()) return consumer.status();
  consumer_ = *std::move(consumer);
  if (absl::Status s = consumer_->Assign(start); !s.ok()) return s;
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void FakeProcessor::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (consumer_) consumer_->Close().IgnoreError();
  if (producer_) producer_->Close().IgnoreError();
}

void FakeProcessor::Release(const std::string& command_id) {
  absl::MutexLock lock(&mu_);
  to_release_.insert(command_id);
}

int FakeProcessor::distinct_answered() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(answered_.size());
}

void FakeProcessor::Run() {
  while (!stop_) {
    std::vector<v1::CommandEnvelope> released;
    {
      absl::MutexLock lock(&mu_);
      for (const std::string& id : to_release_) {
        if (auto it = held_.find(id); it != held_.end()) {
          released.push_back(it->second);
          held_.erase(it);
        }
      }
      to_release_.clear();
    }
    for (const auto& c : released) Answer(c, /*released=*/true);
    auto batch = consumer_->Poll(100, absl::Milliseconds(20));
    if (!batch.ok()) continue;
    for (const log::Record& r : *batch) {
      v1::CommandEnvelope c;
      if (!c.ParseFromString(r.value)) continue;
      ++seen_;
      Handle(c);
    }
  }
}

void FakeProcessor::Handle(const v1::CommandEnvelope& c) {
  std::optional<v1::CommandResult> original;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = answered_.find(c.command_id()); it != answered_.end()) {
      original = it->second;
    } else if (held_.contains(c.command_id())) {
      return;
    }
  }
  if (original.has_value()) {
    Publish(*original);  // a duplicate: the original result again, no new events
    return;
  }
  Answer(c, /*released=*/false);
}

void FakeProcessor::Answer(const v1::CommandEnvelope& c, bool released) {
  google::protobuf::StringValue what;
  c.payload().UnpackTo(&what);
  std::vector<std::string> parts = absl::StrSplit(what.value(), ':');
  const std::string verb = released ? "accept" : parts[0];
  if (verb == "hold") {
    absl::MutexLock lock(&mu_);
    held_[c.command_id()] = c;
    return;
  }
  v1::CommandResult r;
  r.set_command_id(c.command_id());
  r.set_aggregate_type(c.aggregate_type());
  r.set_aggregate_id(c.aggregate_id());
  r.set_correlation_id(c.correlation_id());
  if (auto it = c.metadata().find("echo"); it != c.metadata().end()) r.set_message(it->second);
  int64_t& version = versions_[c.aggregate_id()];
  if (verb == "accept") {
    int n = 1;
    if (parts.size() > 1 && !released) (void)absl::SimpleAtoi(parts[1], &n);
    std::vector<log::TopicPartitionOffset> where;
    for (int i = 0; i < n; ++i) {
      v1::EventEnvelope e;
      e.set_aggregate_type(c.aggregate_type());
      e.set_aggregate_id(c.aggregate_id());
      e.set_version(++version);
      e.set_command_id(c.command_id());
      e.set_correlation_id(c.correlation_id());
      *e.mutable_payload() = c.payload();
      producer_
          ->Produce(
              {.topic = topics_.events, .key = c.aggregate_id(), .value = e.SerializeAsString()},
              [&where](absl::StatusOr<log::TopicPartitionOffset> w) {
                if (w.ok()) where.push_back(*w);
              })
          .IgnoreError();
    }
    producer_->Flush(absl::Seconds(10)).IgnoreError();
    for (const auto& w : where) {
      v1::Position* p = r.add_event_positions();
      p->set_topic(w.tp.topic);
      p->set_partition(w.tp.partition);
      p->set_offset(w.offset);
    }
    r.set_outcome(v1::CommandResult::ACCEPTED);
    r.set_event_count(n);
  } else if (verb == "reject") {
    int code = 9;
    if (parts.size() > 1) (void)absl::SimpleAtoi(parts[1], &code);
    r.set_outcome(v1::CommandResult::REJECTED);
    r.set_code(code);
    r.set_message("rejected by test");
  } else if (verb == "conflict") {
    r.set_outcome(v1::CommandResult::CONFLICT);
    r.set_code(10);
  } else {
    r.set_outcome(v1::CommandResult::FAILED);
    r.set_code(13);
    r.set_message("handler failed");
  }
  r.set_version(version);
  {
    absl::MutexLock lock(&mu_);
    answered_[c.command_id()] = r;
  }
  Publish(r);
}

void FakeProcessor::Publish(const v1::CommandResult& r) {
  producer_
      ->Produce({.topic = topics_.results, .key = r.aggregate_id(), .value = r.SerializeAsString()})
      .IgnoreError();
  producer_->Flush(absl::Seconds(10)).IgnoreError();
}

}  // namespace leftfold::testing
