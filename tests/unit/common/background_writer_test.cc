#include "common/background_writer.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <string>
#include <vector>

namespace leftfold::internal {
namespace {

TEST(BackgroundWriter, RunsJobsInOrderAndDrainWaitsForThem) {
  std::vector<int> ran;  // written by the writer thread only, read after Drain
  BackgroundWriter writer(/*max_pending=*/2, "test-writer");
  for (int i = 1; i <= 100; ++i) {
    EXPECT_EQ(writer.Enqueue([&ran, i] {
      ran.push_back(i);
      return absl::OkStatus();
    }),
              static_cast<uint64_t>(i));
  }
  ASSERT_TRUE(writer.Drain().ok());
  EXPECT_EQ(writer.applied(), 100u);
  ASSERT_EQ(ran.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(ran[i], i + 1);
}

// Its thread carries the name it was given (cut to Linux's 15 characters), for top -H and perf.
TEST(BackgroundWriter, NamesItsThread) {
  std::string name;  // written by the writer thread only, read after Drain
  BackgroundWriter writer(/*max_pending=*/1, "lf-a-long-writer-name");
  writer.Enqueue([&name] {
    char buffer[32] = {};
    pthread_getname_np(pthread_self(), buffer, sizeof(buffer));
    name = buffer;
    return absl::OkStatus();
  });
  ASSERT_TRUE(writer.Drain().ok());
  EXPECT_EQ(name, "lf-a-long-write");
}

TEST(BackgroundWriter, AFailureSkipsLaterJobsUntilTaken) {
  int ran = 0;
  BackgroundWriter writer(/*max_pending=*/1, "test-writer");
  writer.Enqueue([] { return absl::DataLossError("disk"); });
  writer.Enqueue([&ran] {
    ++ran;
    return absl::OkStatus();
  });
  EXPECT_EQ(writer.Drain().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(writer.error().code(), absl::StatusCode::kDataLoss);  // kept
  EXPECT_EQ(ran, 0);                                              // skipped, still counted
  EXPECT_EQ(writer.applied(), 2u);
  EXPECT_EQ(writer.DrainAndTakeError().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(writer.error().ok());
  writer.Enqueue([&ran] {
    ++ran;
    return absl::OkStatus();
  });
  EXPECT_TRUE(writer.Drain().ok());
  EXPECT_EQ(ran, 1);
}

TEST(BackgroundWriter, DestructorRunsWhatIsQueued) {
  int ran = 0;
  {
    BackgroundWriter writer(/*max_pending=*/4, "test-writer");
    for (int i = 0; i < 4; ++i) {
      writer.Enqueue([&ran] {
        ++ran;
        return absl::OkStatus();
      });
    }
  }
  EXPECT_EQ(ran, 4);
}

}  // namespace
}  // namespace leftfold::internal
