// The click counter, leftfold's "hello world" (after Goka's): every user is an aggregate that
// counts its clicks, and the click_totals projector keeps a view of the counts.
//
//   leftfold::testing::AggregateFixture f(clicks::ClicksAggregate());
//   f.Given(clicks::v1::Clicked()).When(clicks::v1::Click()).ThenEmits(clicks::v1::Clicked());
//
//   auto runtime = leftfold::ProjectorRuntime::Start(transport, clicks::ClickTotalsProjector());
//   // view rows: "user/<user id>" and "total", each a clicks.v1.Clicks {count}
//
// docs/first-aggregate.md walks through clicks.cc line by line. Both definitions are values;
// build them once and share them (thread-safe once built).
#pragma once

#include "clicks/v1/clicks.pb.h"
#include "leftfold/aggregate.h"
#include "leftfold/projector.h"

namespace clicks {

// Aggregate type "clicks.user": Click always emits Clicked; Clicked adds one to the count.
leftfold::Aggregate<v1::Clicks> ClicksAggregate();

// Projector "click_totals" (RocksDB view): per-user counts under "user/<id>", all clicks under
// "total".
leftfold::Projector ClickTotalsProjector();

}  // namespace clicks
