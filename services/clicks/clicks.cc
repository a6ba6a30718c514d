#include "clicks/clicks.h"

#include "absl/strings/str_cat.h"

namespace clicks {

leftfold::Aggregate<v1::Clicks> ClicksAggregate() {
  return leftfold::Aggregate<v1::Clicks>("clicks.user")
      .Decide<v1::Click>([](const v1::Clicks&, const v1::Click&, leftfold::Emit& emit) {
        emit(v1::Clicked());  // a click is always accepted
        return absl::OkStatus();
      })
      .Apply<v1::Clicked>(
          [](v1::Clicks& state, const v1::Clicked&) { state.set_count(state.count() + 1); });
}

namespace {

// Adds one to the count in row `key`; a missing row is a count of 0.
absl::Status Increment(leftfold::View& view, leftfold::ViewKey key) {
  absl::StatusOr<v1::Clicks> row = view.Get<v1::Clicks>(key);
  if (absl::IsNotFound(row.status())) row = v1::Clicks();
  if (!row.ok()) return row.status();
  row->set_count(row->count() + 1);
  return view.Put(key, *row);
}

}  // namespace

leftfold::Projector ClickTotalsProjector() {
  return leftfold::Projector("click_totals")
      .From(ClicksAggregate())
      .On<v1::Clicked>(
          [](const leftfold::EventContext& ctx, const v1::Clicked&, leftfold::View& view) {
            absl::Status s = Increment(view, absl::StrCat("user/", ctx.aggregate_id().value()));
            if (!s.ok()) return s;
            return Increment(view, "total");
          });
}

}  // namespace clicks
