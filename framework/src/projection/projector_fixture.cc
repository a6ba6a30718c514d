#include "leftfold/testing/projector_fixture.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "store/scan_plan.h"

namespace leftfold::testing {

// Committed rows plus the pending writes of the event being fed, so a failing handler leaves no
// trace, like a rolled-back batch.
class ProjectorFixture::MemoryView : public View {
 public:
  explicit MemoryView(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  void Commit() {
    for (auto& [k, v] : pending_) {
      if (v.has_value()) {
        rows_[k] = std::move(*v);
      } else {
        rows_.erase(k);
      }
    }
    pending_.clear();
  }
  void Rollback() { pending_.clear(); }

 protected:
  absl::StatusOr<std::optional<std::string>> GetRaw(absl::string_view key) const override {
    if (auto it = pending_.find(std::string(key)); it != pending_.end()) return it->second;
    if (auto it = rows_.find(std::string(key)); it != rows_.end()) {
      return std::optional<std::string>(it->second);
    }
    return std::optional<std::string>();
  }
  absl::Status PutRaw(absl::string_view key, std::string any_bytes) override {
    pending_[std::string(key)] = std::move(any_bytes);
    return absl::OkStatus();
  }
  absl::Status DeleteRaw(absl::string_view key) override {
    pending_[std::string(key)] = std::nullopt;
    return absl::OkStatus();
  }
  absl::StatusOr<ScanPage> ScanRaw(const ScanRange& range) const override {
    std::map<std::string, std::string> merged = rows_;
    for (const auto& [k, v] : pending_) {
      if (v.has_value()) {
        merged[k] = *v;
      } else {
        merged.erase(k);
      }
    }
    internal::store::ScanPlan plan(range);
    ScanPage page;
    for (auto it = merged.lower_bound(plan.lower()); it != merged.end(); ++it) {
      if (!plan.InRange(it->first)) break;
      if (plan.Full()) {
        page.next_page_token = it->first;
        break;
      }
      plan.Take();
      ViewRow& row = page.rows.emplace_back();
      row.key = it->first;
      row.value.ParseFromString(it->second);
    }
    return page;
  }

 private:
  std::string name_;
  std::map<std::string, std::string> rows_;
  std::map<std::string, std::optional<std::string>> pending_;
};

ProjectorFixture::ProjectorFixture(Projector projector)
    : projector_(std::move(projector)), view_(std::make_unique<MemoryView>(projector_.name())) {}

ProjectorFixture::~ProjectorFixture() = default;

const View& ProjectorFixture::view() const { return *view_; }

absl::Status ProjectorFixture::Given(ViewKey aggregate_id, const google::protobuf::Message& event) {
  if (projector_.event_sources().empty()) {
    return absl::FailedPreconditionError("the projector has no From(aggregate_type) source");
  }
  v1::EventEnvelope envelope;
  envelope.set_aggregate_type(projector_.event_sources().front());
  envelope.set_aggregate_id(std::string(aggregate_id.str()));
  envelope.set_version(++versions_[envelope.aggregate_id()]);
  envelope.set_command_id(absl::StrCat("fixture-", offset_));
  *envelope.mutable_timestamp() = internal::ProtoNow();
  envelope.mutable_payload()->PackFrom(event);
  return Feed(envelope, /*state=*/false);
}

absl::Status ProjectorFixture::Given(const v1::EventEnvelope& envelope) {
  int64_t& v = versions_[envelope.aggregate_id()];
  v = std::max(v, envelope.version());
  return Feed(envelope, /*state=*/false);
}

absl::Status ProjectorFixture::GivenState(ViewKey aggregate_id,
                                          const google::protobuf::Message& state, int64_t version) {
  if (projector_.snapshot_sources().empty()) {
    return absl::FailedPreconditionError("the projector has no FromSnapshots(aggregate_type)");
  }
  v1::EventEnvelope envelope;
  envelope.set_aggregate_type(projector_.snapshot_sources().front());
  envelope.set_aggregate_id(std::string(aggregate_id.str()));
  envelope.set_version(version);
  envelope.mutable_payload()->PackFrom(state);
  return Feed(envelope, /*state=*/true);
}

absl::Status ProjectorFixture::Feed(const v1::EventEnvelope& envelope, bool state) {
  if (absl::Status s = projector_.Validate(); !s.ok()) return s;
  if (projector_.store_kind() == Projector::StoreKind::kSql) {
    return absl::FailedPreconditionError(
        "ProjectorFixture runs View projectors; test SqlView projectors against PostgreSQL");
  }
  v1::Position position;
  position.set_topic(absl::StrCat(envelope.aggregate_type(), state ? ".snapshots" : ".events"));
  position.set_partition(0);
  position.set_offset(offset_++);
  EventContext ctx(envelope, position);
  absl::Status s = projector_.Dispatch(ctx, envelope.payload(), state, view_.get(), nullptr);
  if (s.ok()) {
    view_->Commit();
  } else {
    view_->Rollback();
  }
  return s;
}

}  // namespace leftfold::testing
