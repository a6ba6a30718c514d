// The embedded backend of the Log: durable, single-process, RocksDB on a local directory.
// See log/log.h for the contract; README.md in this folder for the layout and what differs
// from Kafka.
//
//   auto log = OpenEmbeddedLog({.embedded_dir = "/var/lib/app/log"});
//   (*log)->admin().CreateTopics({{.name = "bank.account.events", .partitions = 8}});
//   auto producer = (*log)->NewProducer({.transactional_id = "bank.account-0"});
//
// The returned Log owns the RocksDB instance; it must outlive every producer and consumer it
// hands out. Producers and consumers of one Log may be used from different threads (each by
// its own owner thread); Admin is thread-safe.
#pragma once

#include <cstddef>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "log/log.h"

namespace leftfold::internal::log::embedded {

// Settings only the embedded backend has (LogOptions covers the shared ones).
struct EmbeddedOptions {
  // Default: 1 MiB (Kafka's message.max.bytes). Key + value + headers above it: INVALID_ARGUMENT.
  size_t max_record_bytes = size_t{1} << 20;
  // Default: false, like a Kafka broker (which leaves flushing to the OS): a commit is written
  // to the WAL before it returns, so it survives kill -9 of the process, but not an OS crash or
  // power loss. true: fsync the WAL on every transaction commit and CommitOffsets (about 3x
  // slower on this project's CI machine). LogOptions::embedded_fsync sets it.
  bool sync_commits = false;
  // Default: false. Plain-producer batches go to the WAL without fsync: they survive kill -9,
  // not a power loss (like Kafka's acks=all with the broker's default of no fsync).
  bool sync_plain_writes = false;
  // Default: 5ms (librdkafka's linger.ms). How long a plain producer gathers records before a
  // background write; Flush writes at once.
  absl::Duration linger = absl::Milliseconds(5);
  // Default: 1000. A plain producer writes as soon as this many records are queued.
  size_t max_batch_records = 1000;
};

// Opens (creating when missing) the log stored in options.embedded_dir. One process at a time:
// a second process opening the same directory gets FAILED_PRECONDITION (RocksDB's lock).
absl::StatusOr<std::unique_ptr<Log>> OpenEmbeddedLog(const LogOptions& options);
absl::StatusOr<std::unique_ptr<Log>> OpenEmbeddedLog(const LogOptions& options,
                                                     const EmbeddedOptions& embedded);

}  // namespace leftfold::internal::log::embedded
