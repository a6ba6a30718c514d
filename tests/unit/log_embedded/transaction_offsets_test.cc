// Offsets of transactional records before the commit (Kafka's model on the embedded log):
// Flush inside a transaction reserves the records' final offsets and delivers them; commit
// writes them there; abort leaves a gap; readers never pass the lowest open reservation (the
// last stable offset), so a transaction committed later can never land behind a consumer.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "log/embedded/embedded_log.h"
#include "log/errors.h"
#include "support/test_env.h"

namespace leftfold::internal::log::embedded {
namespace {

#define ASSERT_OK(expr)                                     \
  do {                                                      \
    const absl::Status assert_ok_status = (expr);           \
    ASSERT_TRUE(assert_ok_status.ok()) << assert_ok_status; \
  } while (0)

using Delivered = std::vector<absl::StatusOr<TopicPartitionOffset>>;

class TransactionOffsetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = leftfold::testing::MakeTempDir("embedded-lso");
    auto log = OpenEmbeddedLog({.embedded_dir = dir_});
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
    ASSERT_OK(log_->admin().CreateTopics({{.name = "t", .partitions = 3}}));
  }
  std::unique_ptr<Producer> NewProducer(const std::string& txn_id = "") {
    auto p = log_->NewProducer({.transactional_id = txn_id});
    EXPECT_TRUE(p.ok());
    return *std::move(p);
  }
  std::unique_ptr<Consumer> ConsumerAt(int32_t partition, int64_t offset) {
    auto c = log_->NewConsumer({});
    EXPECT_TRUE(c.ok());
    EXPECT_TRUE((*c)->Assign({{{"t", partition}, offset}}).ok());
    return *std::move(c);
  }
  std::vector<int64_t> Ends(Isolation isolation) {
    auto ends = log_->admin().EndOffsets("t", isolation);
    EXPECT_TRUE(ends.ok()) << ends.status();
    return ends.ok() ? *ends : std::vector<int64_t>{};
  }
  // Produces `values` to partition 0 and returns a callback sink.
  void ProduceTo(Producer& producer, int32_t partition, const std::vector<std::string>& values,
                 Delivered* delivered = nullptr) {
    for (const std::string& v : values) {
      DeliveryCallback cb = nullptr;
      if (delivered != nullptr) cb = [delivered](auto r) { delivered->push_back(r); };
      ASSERT_OK(producer.Produce({.topic = "t", .value = v, .partition = partition}, cb));
    }
  }

  std::string dir_;
  std::unique_ptr<Log> log_;
};

// Polls until `n` records arrived (or 10 s passed); returns what arrived.
std::vector<Record> PollN(Consumer& consumer, size_t n) {
  std::vector<Record> out;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (out.size() < n && absl::Now() < deadline) {
    auto batch = consumer.Poll(n - out.size(), deadline - absl::Now());
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok()) break;
    out.insert(out.end(), batch->begin(), batch->end());
  }
  return out;
}

// Absence is asserted over a bounded window: nothing a correct log could deliver later.
std::vector<Record> PollBriefly(Consumer& consumer) {
  auto batch = consumer.Poll(100, absl::Milliseconds(200));
  EXPECT_TRUE(batch.ok()) << batch.status();
  return batch.ok() ? *batch : std::vector<Record>{};
}

std::vector<std::string> Values(const std::vector<Record>& records) {
  std::vector<std::string> out;
  for (const Record& r : records) out.push_back(r.value);
  return out;
}

std::vector<int64_t> Offsets(const std::vector<Record>& records) {
  std::vector<int64_t> out;
  for (const Record& r : records) out.push_back(r.offset);
  return out;
}

TEST_F(TransactionOffsetsTest, FlushInTransactionDeliversTheFinalOffsets) {
  auto plain = NewProducer();
  ProduceTo(*plain, 0, {"seed-0", "seed-1"});
  ASSERT_OK(plain->Flush(absl::Seconds(5)));

  auto producer = NewProducer("txn-flush");
  Delivered delivered;
  ASSERT_OK(producer->BeginTransaction());
  ProduceTo(*producer, 0, {"a0", "a1", "a2"}, &delivered);
  ProduceTo(*producer, 1, {"b0", "b1"}, &delivered);
  EXPECT_TRUE(delivered.empty()) << "nothing delivered before the flush";
  ASSERT_OK(producer->Flush(absl::Seconds(5)));
  ASSERT_EQ(delivered.size(), 5u);
  std::vector<TopicPartitionOffset> expected = {
      {{"t", 0}, 2}, {{"t", 0}, 3}, {{"t", 0}, 4}, {{"t", 1}, 0}, {{"t", 1}, 1}};
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_TRUE(delivered[i].ok()) << delivered[i].status();
    EXPECT_EQ(*delivered[i], expected[i]);
  }
  // A second flush delivers only the new records; the rest get theirs at commit.
  ProduceTo(*producer, 0, {"a3"}, &delivered);
  ASSERT_OK(producer->Flush(absl::Seconds(5)));
  ASSERT_EQ(delivered.size(), 6u);
  EXPECT_EQ(delivered[5]->offset, 5);
  ProduceTo(*producer, 0, {"a4"}, &delivered);
  EXPECT_EQ(Ends(Isolation::kReadCommitted), (std::vector<int64_t>{2, 0, 0}));
  ASSERT_OK(producer->CommitTransaction());
  ASSERT_EQ(delivered.size(), 7u) << "each callback runs exactly once";
  EXPECT_EQ(delivered[6]->offset, 6);
  EXPECT_EQ(Ends(Isolation::kReadCommitted), (std::vector<int64_t>{7, 2, 0}));

  // The records are at exactly the delivered offsets.
  auto consumer = ConsumerAt(0, 0);
  std::vector<Record> p0 = PollN(*consumer, 7);
  EXPECT_EQ(Values(p0),
            (std::vector<std::string>{"seed-0", "seed-1", "a0", "a1", "a2", "a3", "a4"}));
  EXPECT_EQ(Offsets(p0), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  auto consumer1 = ConsumerAt(1, 0);
  std::vector<Record> p1 = PollN(*consumer1, 2);
  EXPECT_EQ(Values(p1), (std::vector<std::string>{"b0", "b1"}));
  EXPECT_EQ(Offsets(p1), (std::vector<int64_t>{0, 1}));
}

TEST_F(TransactionOffsetsTest, AbortAfterFlushLeavesAGapThatConsumersSkip) {
  auto producer = NewProducer("txn-gap");
  ASSERT_OK(producer->BeginTransaction());
  ProduceTo(*producer, 0, {"first"});
  ASSERT_OK(producer->CommitTransaction());

  auto consumer = ConsumerAt(0, 0);
  EXPECT_EQ(Values(PollN(*consumer, 1)), (std::vector<std::string>{"first"}));

  Delivered delivered;
  ASSERT_OK(producer->BeginTransaction());
  ProduceTo(*producer, 0, {"x", "y", "z"}, &delivered);
  ASSERT_OK(producer->Flush(absl::Seconds(5)));
  ASSERT_EQ(delivered.size(), 3u);
  EXPECT_EQ(delivered[0]->offset, 1);
  ASSERT_OK(producer->AbortTransaction());
  EXPECT_EQ(delivered.size(), 3u) << "delivered records get no second callback on abort";
  // Aborted records keep their offsets (as in Kafka), never readable: the ends skip them.
  EXPECT_EQ(Ends(Isolation::kReadCommitted), (std::vector<int64_t>{4, 0, 0}));
  EXPECT_EQ(Ends(Isolation::kReadUncommitted), (std::vector<int64_t>{4, 0, 0}));
  EXPECT_TRUE(PollBriefly(*consumer).empty());
  EXPECT_EQ(*consumer->Position({"t", 0}), 4) << "the position moves past a trailing gap";

  ASSERT_OK(producer->BeginTransaction());
  ProduceTo(*producer, 0, {"second"}, &delivered);
  ASSERT_OK(producer->CommitTransaction());
  EXPECT_EQ(delivered.back()->offset, 4);
  std::vector<Record> after = PollN(*consumer, 1);
  EXPECT_EQ(Values(after), (std::vector<std::string>{"second"}));
  EXPECT_EQ(Offsets(after), (std::vector<int64_t>{4}));

  // From the start, and from inside the gap, readers continue past it.
  auto from_start = ConsumerAt(0, 0);
  std::vector<Record> all = PollN(*from_start, 2);
  EXPECT_EQ(Values(all), (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(Offsets(all), (std::vector<int64_t>{0, 4}));
  auto in_gap = ConsumerAt(0, 2);
  EXPECT_EQ(Offsets(PollN(*in_gap, 1)), (std::vector<int64_t>{4}));
  EXPECT_EQ(*in_gap->Position({"t", 0}), 5);
}

TEST_F(TransactionOffsetsTest, OpenReservationHoldsBackLaterCommitsUntilItCommits) {
  auto a = NewProducer("txn-a");
  auto b = NewProducer("txn-b");
  Delivered a_delivered, b_delivered;
  ASSERT_OK(a->BeginTransaction());
  ProduceTo(*a, 0, {"a0", "a1"}, &a_delivered);
  ASSERT_OK(a->Flush(absl::Seconds(5)));  // reserves 0, 1 and stays open
  ASSERT_OK(b->BeginTransaction());
  ProduceTo(*b, 0, {"b0", "b1", "b2"}, &b_delivered);
  ASSERT_OK(b->CommitTransaction());
  ASSERT_EQ(b_delivered.size(), 3u);
  EXPECT_EQ(b_delivered[0]->offset, 2) << "B appends after A's reserved range";
  // A plain producer appends after both; it is held back too.
  auto plain = NewProducer();
  ProduceTo(*plain, 0, {"p0"});
  ASSERT_OK(plain->Flush(absl::Seconds(5)));

  EXPECT_EQ(Ends(Isolation::kReadCommitted), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(Ends(Isolation::kReadUncommitted), (std::vector<int64_t>{6, 0, 0}));
  auto consumer = ConsumerAt(0, 0);
  EXPECT_TRUE(PollBriefly(*consumer).empty()) << "B's records are behind A's open reservation";
  EXPECT_EQ(*consumer->Position({"t", 0}), 0);

  // A consumer waiting at the end is woken by A's commit.
  std::vector<Record> woken;
  std::thread waiter([&] {
    auto waiting = ConsumerAt(0, 0);
    auto batch = waiting->Poll(100, absl::Seconds(30));
    if (batch.ok()) woken = *batch;
  });
  ProduceTo(*a, 0, {"a2"}, &a_delivered);  // unflushed: lands after everything so far
  ASSERT_OK(a->CommitTransaction());
  waiter.join();
  EXPECT_FALSE(woken.empty());
  ASSERT_EQ(a_delivered.size(), 3u);
  EXPECT_EQ(a_delivered[2]->offset, 6);

  std::vector<Record> all = PollN(*consumer, 7);
  EXPECT_EQ(Values(all), (std::vector<std::string>{"a0", "a1", "b0", "b1", "b2", "p0", "a2"}));
  EXPECT_EQ(Offsets(all), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(Ends(Isolation::kReadCommitted), Ends(Isolation::kReadUncommitted));
}

TEST_F(TransactionOffsetsTest, OpenReservationHoldsBackLaterCommitsUntilItAborts) {
  auto a = NewProducer("txn-a");
  auto b = NewProducer("txn-b");
  ASSERT_OK(a->BeginTransaction());
  ProduceTo(*a, 0, {"a0", "a1"});
  ASSERT_OK(a->Flush(absl::Seconds(5)));
  ASSERT_OK(b->BeginTransaction());
  ProduceTo(*b, 0, {"b0"});
  ASSERT_OK(b->CommitTransaction());
  auto consumer = ConsumerAt(0, 0);
  EXPECT_TRUE(PollBriefly(*consumer).empty());
  ASSERT_OK(a->AbortTransaction());
  std::vector<Record> all = PollN(*consumer, 1);
  EXPECT_EQ(Values(all), (std::vector<std::string>{"b0"}));
  EXPECT_EQ(Offsets(all), (std::vector<int64_t>{2}));
}

TEST_F(TransactionOffsetsTest, EndOffsetsSplitWhileATransactionIsOpen) {
  auto producer = NewProducer("txn-end");
  ASSERT_OK(producer->BeginTransaction());
  ProduceTo(*producer, 0, {"c0", "c1"});
  ProduceTo(*producer, 2, {"c2"});
  ASSERT_OK(producer->CommitTransaction());
  ASSERT_OK(producer->BeginTransaction());
  ProduceTo(*producer, 0, {"o0", "o1", "o2"});
  ProduceTo(*producer, 1, {"o3"});
  // Staged but not flushed: no offsets taken yet.
  EXPECT_EQ(Ends(Isolation::kReadUncommitted), (std::vector<int64_t>{2, 0, 1}));
  ASSERT_OK(producer->Flush(absl::Seconds(5)));
  EXPECT_EQ(Ends(Isolation::kReadCommitted), (std::vector<int64_t>{2, 0, 1}));
  EXPECT_EQ(Ends(Isolation::kReadUncommitted), (std::vector<int64_t>{5, 1, 1}));
  ASSERT_OK(producer->CommitTransaction());
  EXPECT_EQ(Ends(Isolation::kReadCommitted), (std::vector<int64_t>{5, 1, 1}));
  EXPECT_EQ(Ends(Isolation::kReadUncommitted), (std::vector<int64_t>{5, 1, 1}));
}

TEST_F(TransactionOffsetsTest, DestroyedOrFencedProducerReleasesItsReservations) {
  auto doomed = NewProducer("txn-doomed");
  ASSERT_OK(doomed->BeginTransaction());
  ProduceTo(*doomed, 0, {"d0", "d1"});
  ASSERT_OK(doomed->Flush(absl::Seconds(5)));
  EXPECT_EQ(Ends(Isolation::kReadCommitted), (std::vector<int64_t>{0, 0, 0}));
  doomed.reset();
  EXPECT_EQ(Ends(Isolation::kReadCommitted), (std::vector<int64_t>{2, 0, 0}));

  auto zombie = NewProducer("txn-z");
  Delivered delivered;
  ASSERT_OK(zombie->BeginTransaction());
  ProduceTo(*zombie, 0, {"z0"}, &delivered);
  ASSERT_OK(zombie->Flush(absl::Seconds(5)));
  EXPECT_EQ(Ends(Isolation::kReadCommitted), (std::vector<int64_t>{2, 0, 0}));
  // Like InitTransactions, the successor aborts the zombie's open transaction at once.
  auto successor = NewProducer("txn-z");
  EXPECT_EQ(Ends(Isolation::kReadCommitted), (std::vector<int64_t>{3, 0, 0}));
  EXPECT_EQ(ClassifyError(zombie->CommitTransaction()), ErrorClass::kFatal);
  ASSERT_OK(successor->BeginTransaction());
  ProduceTo(*successor, 0, {"s0"}, &delivered);
  ASSERT_OK(successor->CommitTransaction());
  EXPECT_EQ(delivered.back()->offset, 3);
  auto consumer = ConsumerAt(0, 0);
  EXPECT_EQ(Values(PollN(*consumer, 1)), (std::vector<std::string>{"s0"}));
}

// --- kill -9 with a reserved transaction open (helper: crash_writer "reserve") ---

std::string RunWriterUntil(const std::string& dir, const std::string& wanted, pid_t* pid) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  *pid = fork();
  if (*pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(LEFTFOLD_CRASH_WRITER, LEFTFOLD_CRASH_WRITER, dir.c_str(), "reserve", "30", nullptr);
    _exit(127);
  }
  close(fds[1]);
  FILE* out = fdopen(fds[0], "r");
  char* line = nullptr;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, out);
  std::string result = n > 0 ? std::string(line, n - 1) : "";
  free(line);
  fclose(out);
  EXPECT_EQ(result, wanted);
  return result;
}

TEST(TransactionOffsetsCrash, KillNineWithAReservedTransactionOpenShowsNoneOfIt) {
  std::string dir = leftfold::testing::MakeTempDir("embedded-lso-crash");
  pid_t pid = -1;
  RunWriterUntil(dir, "reserved", &pid);
  ASSERT_GT(pid, 0);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);

  auto log = OpenEmbeddedLog({.embedded_dir = dir});
  ASSERT_TRUE(log.ok()) << log.status();
  auto ends = (*log)->admin().EndOffsets("crash", Isolation::kReadCommitted);
  ASSERT_TRUE(ends.ok()) << ends.status();
  EXPECT_EQ(*ends, *(*log)->admin().EndOffsets("crash", Isolation::kReadUncommitted))
      << "no reservation survives the process";
  // Batch 0 and batch 2 (committed after batch 1's reservation) are there; batch 1 is a gap.
  auto producer = *(*log)->NewProducer({.transactional_id = "after-crash"});
  Delivered delivered;
  ASSERT_OK(producer->BeginTransaction());
  for (int32_t p = 0; p < 3; ++p) {
    ASSERT_OK(producer->Produce({.topic = "crash", .value = "3:new", .partition = p},
                                [&](auto r) { delivered.push_back(r); }));
  }
  ASSERT_OK(producer->Flush(absl::Seconds(5)));
  ASSERT_OK(producer->CommitTransaction());
  ASSERT_EQ(delivered.size(), 3u);
  std::map<char, int> per_batch;
  for (int32_t p = 0; p < 3; ++p) {
    ASSERT_TRUE(delivered[p].ok());
    EXPECT_EQ(delivered[p]->offset, (*ends)[p]) << "appends continue after the last record";
    auto consumer = *(*log)->NewConsumer({});
    ASSERT_OK(consumer->Assign({{{"crash", p}, 0}}));
    std::vector<Record> records;
    while (records.empty() || records.back().value != "3:new") {
      std::vector<Record> more = PollN(*consumer, 1);
      ASSERT_FALSE(more.empty()) << "partition " << p << " stalled";
      records.insert(records.end(), more.begin(), more.end());
    }
    int64_t previous = -1;
    for (const Record& r : records) {
      EXPECT_GT(r.offset, previous);
      previous = r.offset;
      ++per_batch[r.value[0]];
    }
  }
  EXPECT_EQ(per_batch, (std::map<char, int>{{'0', 30}, {'2', 30}, {'3', 3}}));
}

}  // namespace
}  // namespace leftfold::internal::log::embedded
