// The aggregate processor: runs an aggregate's decide/apply functions over its command topic,
// exactly once, and publishes events, results and snapshots.
//
//   auto transport = leftfold::Transport::Open({});            // embedded, or {.brokers = ...}
//   auto processor = leftfold::Processor::Create(*transport, bank::AccountAggregate(),
//                                                {.state_dir = "/var/lib/bank/state"});
//   if (!processor.ok()) return processor.status();
//   std::thread t([&] { absl::Status s = (*processor)->Run(); ... });
//   ...
//   (*processor)->Stop();   // from any thread, e.g. a SIGTERM handler's watcher
//   t.join();
//
// Per batch of commands it deduplicates by command id, loads states (cache, then the partition's
// RocksDB store), checks expected versions, runs decide, folds the events with apply, and writes
// events, results, snapshots and the consumer offsets in ONE transaction (exactly_once), then
// updates the local store. Many instances with the same group split the partitions.
//
// Thread-safety: Run() on one thread; Stop() and stats() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "leftfold/aggregate.h"
#include "leftfold/transport.h"

namespace leftfold {

struct ProcessorOptions {
  enum class Guarantee {
    // Events, results, snapshots and offsets commit in one transaction. Kafka default.
    kExactlyOnce,
    // Idempotent producer, offsets committed after delivery; a crash may re-process a batch,
    // which command-id deduplication then answers with the original result. Fewer
    // broker round trips per batch than a transaction.
    kAtLeastOnce,
  };
  Guarantee guarantee = Guarantee::kExactlyOnce;
  // Where the per-partition RocksDB stores live. Default: "leftfold-data/state".
  std::string state_dir = "leftfold-data/state";
  // Consumer group of the instances that share the work. Default: "<prefix><type>.processor".
  std::string group;
  // Distinguishes instances of the group (part of the transactional id). Default: "<host>-<pid>".
  // Set it to a stable name per instance (e.g. the pod name) and the instance becomes a static
  // Kafka group member: a restart gets its partitions back at once, not after the session
  // timeout; a stopped one keeps them unprocessed until that timeout.
  std::string instance_id;
  // Most commands per transaction: only reached when commands queue up (a batch takes what
  // arrived during the previous one), so it sets throughput under a backlog, not latency below
  // it. Default: 10,000. leftfold_processor_bench, against 2,000: embedded 1.2-1.3x (bank-uniform
  // and bank-zipf; 20,000 gains nothing more), Kafka exactly once ~1.13x at the same ratio to the
  // passthrough. Memory grows with it: peak RSS over 1M new aggregates 445 -> 511 MiB, and the
  // Kafka bench's process ~210 -> ~350 MiB (librdkafka buffers a larger transaction).
  size_t max_batch = 10000;
  // Longest wait for a batch to fill. Default: 2ms (latency over batch size under light load).
  absl::Duration max_batch_delay = absl::Milliseconds(2);
  // Aggregate states kept in memory, over all partitions; the least recently used go first
  // (approximately: a state used at least once per cache_size / 2 new or reused states always
  // stays). Default: 100,000.
  size_t cache_size = 100000;
  // The broker aborts a transaction of this instance left open this long (e.g. the process hung),
  // so another instance can take over its partitions. Default: 60s.
  absl::Duration transaction_timeout = absl::Seconds(60);
  // How long a command id is remembered for deduplication. Default: 24h (also the results
  // topic's retention, from which a wiped store rebuilds the index).
  absl::Duration dedup_window = absl::Hours(24);
  // Command ids of the window each partition keeps in an in-memory filter (~1.5 bytes an id),
  // so that looking up a new id skips the local store. Past this many ids in the window the
  // partition turns its filter off (logged) and reads the store for every id, as it does with 0.
  // Default: 8M ids (12 MiB a partition at most).
  size_t dedup_filter_ids = size_t{8} << 20;
  // Processing threads of this instance. Each is a group member of its own (consumer,
  // transactional producer "<group>-<instance_id>-w<i>", store writer thread, a 1/workers share
  // of cache_size) and owns a subset of the partitions, so one instance uses that many cores
  // under the same per-transaction contract as that many instances. Default: 1.
  size_t workers = 1;
};

struct ProcessorStats {
  // Commands decided (a batch that is aborted and redone counts again).
  int64_t commands = 0;
  // Commands whose results are committed to the log.
  int64_t committed = 0;
  int64_t accepted = 0;
  int64_t rejected = 0;
  int64_t conflicts = 0;
  int64_t failed = 0;
  int64_t duplicates = 0;
  int64_t transactions = 0;
  int64_t aborted_transactions = 0;
  int64_t restored_snapshots = 0;
};

class Processor {
 public:
  // Validates the definition, creates the aggregate's topics when missing and checks that they
  // are co-partitioned. Does not join the group yet (Run does).
  static absl::StatusOr<std::unique_ptr<Processor>> Create(std::shared_ptr<Transport> transport,
                                                           AggregateDefinition definition,
                                                           ProcessorOptions options = {});
  virtual ~Processor() = default;

  // Processes until Stop() (OK) or a fatal error such as being fenced by another instance.
  virtual absl::Status Run() = 0;
  virtual void Stop() = 0;
  virtual ProcessorStats stats() const = 0;
  // True once Run has joined the group and restored the partitions it was first given.
  virtual bool ready() const = 0;
};

}  // namespace leftfold
