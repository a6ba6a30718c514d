// Crash safety of the embedded log with a real child process killed by SIGKILL: a commit is
// all or nothing, a committed batch survives, a staged transaction never shows.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "log/embedded/embedded_log.h"
#include "support/test_env.h"

namespace leftfold::internal::log::embedded {
namespace {

// The writer child, its stdout on a pipe we read line by line.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> argv;
      std::string path = LEFTFOLD_CRASH_WRITER;
      argv.push_back(path.data());
      std::vector<std::string> copy = args;
      for (std::string& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(path.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fdopen(fds[0], "r");
  }
  ~Child() {
    Kill();
    if (out_ != nullptr) fclose(out_);
  }
  // Next line, or "" at EOF (the child died).
  std::string ReadLine() {
    char* line = nullptr;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, out_);
    std::string result = n > 0 ? std::string(line, n - 1) : "";
    free(line);
    return result;
  }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
};

// Batch id -> record count, read back through a consumer; also checks offsets are contiguous.
std::map<int64_t, int> ReadBatches(Log& log) {
  std::map<int64_t, int> counts;
  auto consumer = log.NewConsumer({});
  EXPECT_TRUE(consumer.ok());
  auto ends = log.admin().EndOffsets("crash", Isolation::kReadCommitted);
  EXPECT_TRUE(ends.ok()) << ends.status();
  for (int32_t p = 0; p < static_cast<int32_t>(ends->size()); ++p) {
    EXPECT_TRUE((*consumer)->Assign({{{"crash", p}, 0}}).ok());
    int64_t expected = 0;
    while (expected < (*ends)[p]) {
      auto records = (*consumer)->Poll(10000, absl::Seconds(5));
      EXPECT_TRUE(records.ok()) << records.status();
      if (!records.ok() || records->empty()) break;
      for (const Record& r : *records) {
        EXPECT_EQ(r.offset, expected++) << "gap in partition " << p;
        std::vector<std::string> parts = absl::StrSplit(r.value, ':');
        int64_t batch = -1;
        EXPECT_TRUE(absl::SimpleAtoi(parts[0], &batch));
        EXPECT_EQ(r.headers, (std::vector<Header>{{"batch", parts[0]}}));
        ++counts[batch];
      }
    }
    EXPECT_EQ(expected, (*ends)[p]);
  }
  return counts;
}

int64_t CommittedInput(Log& log) {
  auto consumer = log.NewConsumer({.group_id = "crash-group"});
  auto committed = (*consumer)->Committed({{"input", 0}}, absl::Seconds(1));
  EXPECT_TRUE(committed.ok()) << committed.status();
  return committed.ok() ? (*committed)[0].offset : -2;
}

TEST(EmbeddedLogCrash, KillNineMidWriteKeepsEveryCommitWholeAndNothingPartial) {
  constexpr int kRecordsPerBatch = 200;
  std::mt19937 rng(std::random_device{}());
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE(round);
    std::string dir = leftfold::testing::MakeTempDir("embedded-crash");
    int64_t last_reported = -1;
    {
      Child child({dir, "commit-loop", std::to_string(kRecordsPerBatch)});
      int wait_for = std::uniform_int_distribution<int>(3, 40)(rng);
      for (int i = 0; i < wait_for; ++i) {
        std::string line = child.ReadLine();
        ASSERT_TRUE(absl::StartsWith(line, "committed ")) << "child said: '" << line << "'";
        ASSERT_TRUE(absl::SimpleAtoi(line.substr(10), &last_reported));
      }
      // A random moment inside the next commit cycles, not a synchronization wait.
      usleep(std::uniform_int_distribution<int>(0, 20000)(rng));
      child.Kill();
    }
    ASSERT_GE(last_reported, 2);

    auto log = OpenEmbeddedLog({.embedded_dir = dir});
    ASSERT_TRUE(log.ok()) << log.status();
    std::map<int64_t, int> batches = ReadBatches(**log);
    ASSERT_FALSE(batches.empty());
    int64_t max_batch = batches.rbegin()->first;
    EXPECT_GE(max_batch, last_reported) << "a reported commit is missing";
    for (int64_t b = 0; b <= max_batch; ++b) {
      EXPECT_EQ(batches[b], kRecordsPerBatch) << "batch " << b << " is partial or missing";
    }
    EXPECT_EQ(static_cast<int64_t>(batches.size()), max_batch + 1);
    // The group offset committed with each batch moved exactly with the records.
    EXPECT_EQ(CommittedInput(**log), max_batch + 1);
  }
}

TEST(EmbeddedLogCrash, StagedTransactionOfAKilledProcessIsInvisible) {
  std::string dir = leftfold::testing::MakeTempDir("embedded-staged");
  {
    Child child({dir, "stage", "50"});
    ASSERT_EQ(child.ReadLine(), "committed 0");
    ASSERT_EQ(child.ReadLine(), "staged");
    child.Kill();
  }
  auto log = OpenEmbeddedLog({.embedded_dir = dir});
  ASSERT_TRUE(log.ok()) << log.status();
  std::map<int64_t, int> batches = ReadBatches(**log);
  EXPECT_EQ(batches, (std::map<int64_t, int>{{0, 50}}));
  EXPECT_EQ(CommittedInput(**log), 1);
}

TEST(EmbeddedLogCrash, SecondProcessOnTheSameDirectoryIsRefused) {
  std::string dir = leftfold::testing::MakeTempDir("embedded-lock");
  Child child({dir, "hold"});
  ASSERT_EQ(child.ReadLine(), "open");
  auto log = OpenEmbeddedLog({.embedded_dir = dir});
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition) << log.status();
  child.Kill();
  // The lock dies with its holder.
  auto reopened = OpenEmbeddedLog({.embedded_dir = dir});
  EXPECT_TRUE(reopened.ok()) << reopened.status();
}

}  // namespace
}  // namespace leftfold::internal::log::embedded
