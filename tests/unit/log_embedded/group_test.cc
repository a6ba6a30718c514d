// Consumer groups of the embedded log: partitions split among live members, revocation before
// a partition moves, never two owners, generation fencing of transactional offsets (KIP-447).
#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "log/embedded/embedded_log.h"
#include "log/errors.h"
#include "support/test_env.h"

namespace leftfold::internal::log::embedded {
namespace {

// Who owns what according to the callbacks, plus the order the callbacks came in.
struct Ledger {
  std::map<TopicPartition, std::string> owner;
  std::vector<std::string> events;  // "<member> +t-0" / "<member> -t-0"
  std::vector<std::string> violations;
};

struct Member {
  std::string name;
  std::unique_ptr<Consumer> consumer;
  std::set<TopicPartition> owned;
};

class GroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto log = OpenEmbeddedLog({.embedded_dir = leftfold::testing::MakeTempDir("embedded-group")});
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
    ASSERT_TRUE(log_->admin().CreateTopics({{.name = "t", .partitions = 6}}).ok());
  }

  Member* Join(const std::string& name) {
    auto m = std::make_unique<Member>();
    m->name = name;
    m->consumer = *log_->NewConsumer({.group_id = "g"});
    Member* raw = m.get();
    RebalanceListener listener{
        .on_assigned =
            [this, raw](const std::vector<TopicPartition>& tps) {
              for (const auto& tp : tps) {
                auto [it, fresh] = ledger_.owner.try_emplace(tp, raw->name);
                if (!fresh) {
                  ledger_.violations.push_back(absl::StrCat(
                      raw->name, " got ", tp.topic, "-", tp.partition, " owned by ", it->second));
                }
                raw->owned.insert(tp);
                ledger_.events.push_back(absl::StrCat(raw->name, " +", tp.partition));
              }
            },
        .on_revoked =
            [this, raw](const std::vector<TopicPartition>& tps) {
              for (const auto& tp : tps) {
                if (ledger_.owner[tp] != raw->name) ledger_.violations.push_back("bad revoke");
                ledger_.owner.erase(tp);
                raw->owned.erase(tp);
                ledger_.events.push_back(absl::StrCat(raw->name, " -", tp.partition));
              }
            }};
    EXPECT_TRUE(m->consumer->Subscribe({"t"}, listener).ok());
    members_.push_back(std::move(m));
    return raw;
  }

  // Polls every member (one thread, each consumer used by one thread at a time) until the
  // owned sets have the wanted sizes and cover every partition.
  void SettleTo(const std::vector<size_t>& sizes) {
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      for (auto& m : members_) ASSERT_TRUE(m->consumer->Poll(100, absl::Milliseconds(5)).ok());
      bool done = ledger_.owner.size() == 6;
      for (size_t i = 0; i < members_.size(); ++i) done &= members_[i]->owned.size() == sizes[i];
      if (done) return;
    }
    FAIL() << "group did not settle";
  }

  std::unique_ptr<Log> log_;
  Ledger ledger_;
  std::vector<std::unique_ptr<Member>> members_;
};

TEST_F(GroupTest, MembersSplitPartitionsAndRevokeBeforeTheyMove) {
  Member* a = Join("a");
  SettleTo({6});
  Member* b = Join("b");
  SettleTo({3, 3});
  // Range assignment in join order.
  EXPECT_EQ(a->owned, (std::set<TopicPartition>{{"t", 0}, {"t", 1}, {"t", 2}}));
  EXPECT_EQ(b->owned, (std::set<TopicPartition>{{"t", 3}, {"t", 4}, {"t", 5}}));
  ledger_.events.clear();
  Member* c = Join("c");
  SettleTo({2, 2, 2});
  EXPECT_EQ(c->owned.size(), 2u);
  // Every partition c got was revoked from its old owner before c was given it.
  for (const TopicPartition& tp : c->owned) {
    auto assigned =
        std::find(ledger_.events.begin(), ledger_.events.end(), absl::StrCat("c +", tp.partition));
    ASSERT_NE(assigned, ledger_.events.end());
    bool revoked_before =
        std::find(ledger_.events.begin(), assigned, absl::StrCat("a -", tp.partition)) !=
            assigned ||
        std::find(ledger_.events.begin(), assigned, absl::StrCat("b -", tp.partition)) != assigned;
    EXPECT_TRUE(revoked_before) << tp.partition;
  }
  // A member leaving: its revocation fires in Close, the rest take its partitions.
  ledger_.events.clear();
  ASSERT_TRUE(c->consumer->Close().ok());
  EXPECT_TRUE(c->owned.empty());
  EXPECT_EQ(ledger_.events.size(), 2u);
  EXPECT_TRUE(absl::StartsWith(ledger_.events[0], "c -"));
  members_.pop_back();
  SettleTo({3, 3});
  EXPECT_TRUE(ledger_.violations.empty()) << ledger_.violations[0];
}

TEST_F(GroupTest, DestroyedMemberLeavesTheGroup) {
  Join("a");
  Join("b");
  SettleTo({3, 3});
  ledger_.owner.clear();  // b vanishes without callbacks: forget its partitions in the ledger
  for (auto& m : members_) m->owned.clear();
  members_.pop_back();  // destroys b's consumer
  // a is revoked (eager rebalance) and gets all six.
  ledger_.events.clear();
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (members_[0]->owned.size() != 6 && absl::Now() < deadline) {
    ASSERT_TRUE(members_[0]->consumer->Poll(100, absl::Milliseconds(5)).ok());
  }
  EXPECT_EQ(members_[0]->owned.size(), 6u);
}

TEST_F(GroupTest, StaleGenerationCannotCommitOffsetsInATransaction) {
  Member* a = Join("a");
  SettleTo({6});
  auto producer = *log_->NewProducer({.transactional_id = "p-a"});
  ASSERT_TRUE(producer->BeginTransaction().ok());
  ASSERT_TRUE(producer->Produce({.topic = "t", .value = "zombie", .partition = 0}).ok());
  ASSERT_TRUE(producer->SendOffsetsToTransaction({{{"t", 0}, 1}}, *a->consumer).ok());
  // b joins; a polls, so partition 3.. are revoked and a's generation is stale.
  Join("b");
  SettleTo({3, 3});
  absl::Status s = producer->CommitTransaction();
  EXPECT_EQ(ClassifyError(s), ErrorClass::kAbortable) << s;
  EXPECT_EQ(ClassifyError(producer->CommitTransaction()), ErrorClass::kAbortable);
  ASSERT_TRUE(producer->AbortTransaction().ok());
  EXPECT_EQ(*log_->admin().EndOffsets("t", Isolation::kReadCommitted),
            (std::vector<int64_t>(6, 0)));
  auto committed = a->consumer->Committed({{"t", 0}}, absl::Seconds(1));
  EXPECT_EQ((*committed)[0].offset, -1);
  // With the new generation the same commit goes through.
  ASSERT_TRUE(producer->BeginTransaction().ok());
  ASSERT_TRUE(producer->SendOffsetsToTransaction({{{"t", 0}, 1}}, *a->consumer).ok());
  ASSERT_TRUE(producer->CommitTransaction().ok());
  EXPECT_EQ((*a->consumer->Committed({{"t", 0}}, absl::Seconds(1)))[0].offset, 1);
}

TEST_F(GroupTest, SubscribingBeforeTheTopicExistsAssignsItOnCreation) {
  auto consumer = *log_->NewConsumer({.group_id = "g2"});
  std::vector<TopicPartition> assigned;
  ASSERT_TRUE(
      consumer->Subscribe({"later"}, {.on_assigned = [&](const auto& tps) { assigned = tps; }})
          .ok());
  EXPECT_TRUE(consumer->Poll(10, absl::Milliseconds(10))->empty());
  EXPECT_TRUE(assigned.empty());
  ASSERT_TRUE(log_->admin().CreateTopics({{.name = "later", .partitions = 2}}).ok());
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (assigned.empty() && absl::Now() < deadline) {
    ASSERT_TRUE(consumer->Poll(10, absl::Milliseconds(10)).ok());
  }
  EXPECT_EQ(assigned, (std::vector<TopicPartition>{{"later", 0}, {"later", 1}}));
}

}  // namespace
}  // namespace leftfold::internal::log::embedded
