// Child process of crash_test.cc: writes to an embedded log until the parent SIGKILLs it,
// reporting progress on stdout, one line per event.
//
//   crash_writer DIR commit-loop N   transactions of N records + a group offset, forever;
//                                    prints "committed <batch>" after each commit returns
//   crash_writer DIR stage N         commits batch 0, stages batch 1, prints "staged", waits
//   crash_writer DIR hold            opens the log, prints "open", waits
//   crash_writer DIR reserve N       commits batch 0, stages batch 1 and Flushes it (offsets
//                                    reserved, nothing written), commits batch 2 from a second
//                                    producer after it, prints "reserved", waits
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "log/embedded/embedded_log.h"

namespace lg = leftfold::internal::log;

namespace {

[[noreturn]] void Die(const absl::Status& s) {
  std::fprintf(stderr, "crash_writer: %s\n", s.ToString().c_str());
  std::exit(2);
}

void Check(const absl::Status& s) {
  if (!s.ok()) Die(s);
}

void Report(const std::string& line) {
  std::string out = line + "\n";
  if (write(STDOUT_FILENO, out.data(), out.size()) != static_cast<ssize_t>(out.size())) {
    std::exit(3);
  }
}

// Batch `b`: N records spread over the partitions by key, all tagged with the batch id.
void StageBatch(lg::Producer& producer, int64_t batch, int n) {
  for (int i = 0; i < n; ++i) {
    Check(producer.Produce({.topic = "crash",
                            .key = absl::StrCat("k", i),
                            .value = absl::StrCat(batch, ":", i, ":", n),
                            .headers = {{"batch", absl::StrCat(batch)}}}));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 1;
  auto log = lg::embedded::OpenEmbeddedLog({.embedded_dir = argv[1]});
  if (!log.ok()) Die(log.status());
  std::string mode = argv[2];
  if (mode == "hold") {
    Report("open");
    for (;;) pause();
  }
  int n = argc > 3 ? std::atoi(argv[3]) : 100;
  Check((*log)->admin().CreateTopics(
      {{.name = "crash", .partitions = 3}, {.name = "input", .partitions = 1}}));
  auto producer = (*log)->NewProducer({.transactional_id = "crash-writer"});
  if (!producer.ok()) Die(producer.status());
  auto consumer = (*log)->NewConsumer({.group_id = "crash-group"});
  if (!consumer.ok()) Die(consumer.status());
  Check((*consumer)->Assign({{{"input", 0}, 0}}));
  if (mode == "reserve") {
    Check((*producer)->BeginTransaction());
    StageBatch(**producer, 0, n);
    Check((*producer)->CommitTransaction());
    Check((*producer)->BeginTransaction());
    StageBatch(**producer, 1, n);
    Check((*producer)->Flush(absl::Seconds(5)));
    auto second = (*log)->NewProducer({.transactional_id = "crash-writer-2"});
    if (!second.ok()) Die(second.status());
    Check((*second)->BeginTransaction());
    StageBatch(**second, 2, n);
    Check((*second)->CommitTransaction());
    Report("reserved");
    for (;;) pause();
  }
  for (int64_t batch = 0;; ++batch) {
    Check((*producer)->BeginTransaction());
    StageBatch(**producer, batch, n);
    // The "consumed input" offset moves with the batch: offset = batches committed.
    Check((*producer)->SendOffsetsToTransaction({{{"input", 0}, batch + 1}}, **consumer));
    if (mode == "stage" && batch == 1) {
      Report("staged");
      for (;;) pause();
    }
    Check((*producer)->CommitTransaction());
    Report(absl::StrCat("committed ", batch));
  }
}
