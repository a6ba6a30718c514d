// Test a projector without Kafka: feed it events in memory, read back the view's rows.
//
//   leftfold::testing::ProjectorFixture fx(BalancesProjector());
//   bank::v1::Deposited d;
//   d.set_amount(50);
//   ASSERT_TRUE(fx.Given("acct-1", d).ok());        // version 1, 2, ... per aggregate
//   absl::StatusOr<bank::v1::Account> row = fx.Row<bank::v1::Account>("acct-1");
//   EXPECT_EQ(row->balance(), 50);
//
// Each Given is one committed batch: a handler error returns that error and leaves the view as
// it was (what the runtime does with a poison event). Events of types the projector does not
// handle are skipped, as in the runtime. Only View projectors (not SqlView ones) run here.
// The event topic is "<aggregate type>.events", partition 0, offsets 0, 1, 2, ...
//
// Owns an in-memory view; not thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "leftfold/projector.h"
#include "leftfold/view.h"

namespace leftfold::testing {

class ProjectorFixture {
 public:
  explicit ProjectorFixture(Projector projector);
  ~ProjectorFixture();

  // An event of the projector's (first) source aggregate type, for `aggregate_id`, with the next
  // version of that aggregate.
  absl::Status Given(ViewKey aggregate_id, const google::protobuf::Message& event);
  // A full envelope (aggregate type, version, command id, timestamp as given).
  absl::Status Given(const v1::EventEnvelope& envelope);
  // A snapshot (for OnState handlers) of the first FromSnapshots type.
  absl::Status GivenState(ViewKey aggregate_id, const google::protobuf::Message& state,
                          int64_t version);

  template <typename R>
  absl::StatusOr<R> Row(ViewKey key) const {
    return view().Get<R>(key);
  }
  absl::StatusOr<ScanPage> Scan(const ScanRange& range) const { return view().Scan(range); }
  const View& view() const;
  // Events fed so far (including skipped and failed ones).
  int64_t events_fed() const { return offset_; }

 private:
  absl::Status Feed(const v1::EventEnvelope& envelope, bool state);

  Projector projector_;
  class MemoryView;
  std::unique_ptr<MemoryView> view_;
  std::map<std::string, int64_t> versions_;
  int64_t offset_ = 0;
};

}  // namespace leftfold::testing
