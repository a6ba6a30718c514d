#include "leftfold/processor.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <deque>
#include <filesystem>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/background_writer.h"
#include "common/proto_time.h"
#include "common/thread_name.h"
#include "google/protobuf/arena.h"
#include "leftfold/logging.h"
#include "log/errors.h"
#include "log/log.h"
#include "processor/command_parser.h"
#include "processor/envelope_encoding.h"
#include "processor/partition_store.h"
#include "processor/state_cache.h"
#include "processor/store_writer.h"
#include "topology/topics.h"

namespace leftfold {
namespace internal::processor {
namespace {

using log::ErrorClass;

constexpr char kComponent[] = "processor";
// A batch of at least this many commands (or a full one) is published (when its event offsets
// were predicted) and committed on the committer's thread while the next batch is decided;
// smaller ones go out and commit on the processing thread (see ProcessBatch).
constexpr size_t kOverlapMinBatch = 256;
// Restore and rebuild write the store in chunks of this many records.
constexpr size_t kRestoreChunk = 10000;

// "<partition>/<aggregate id>", built in one allocation at most (StrCat's three pieces and
// their conversions were ~0.2k instructions a command).
std::string CacheKey(int32_t partition, const std::string& aggregate_id) {
  char digits[16];
  const auto [end, error] = std::to_chars(digits, digits + sizeof(digits), partition);
  (void)error;  // an int32_t always fits
  const size_t size = static_cast<size_t>(end - digits);
  std::string key;
  key.reserve(size + 1 + aggregate_id.size());
  key.append(digits, size).push_back('/');
  key.append(aggregate_id);
  return key;
}

// What absl's hash maps keyed by strings (std::string or absl::string_view, with their default
// hasher) compute for `key`. A command id or cache key is hashed once and looked up in several
// maps with find(key, hash).
size_t StringKeyHash(absl::string_view key) { return absl::Hash<absl::string_view>{}(key); }
using StringKeyHasher = absl::flat_hash_map<std::string, int>::hasher;
static_assert(std::is_same_v<StringKeyHasher, absl::flat_hash_map<absl::string_view, int>::hasher>);

std::string DefaultInstanceId() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return absl::StrCat(host, "-", getpid());
}

// What this instance knows of one events partition, to predict the offsets of its next events.
// Only the owner of a command partition writes the matching events partition, so a transaction's
// events there get contiguous offsets, right after the previous transaction's last event and the
// broker's transaction marker(s): `gap`, learned from two consecutive transactions (one on Kafka,
// none on the embedded log). The gap is the log's, the same on every partition, so one learned on
// another partition stands in until this one's is (ProcessorImpl::learned_gap_): a poll returns
// records partition by partition, and a partition's first batches would otherwise wait for two
// transactions of their own. Predicting lets a batch send its results (which carry the events'
// positions) together with its events, saving a round trip; every prediction is checked against
// the deliveries before the commit, and a miss aborts the batch and forgets the tracks.
struct EventOffsetTrack {
  int64_t last = -1;  // offset of the last event of the last committed transaction
  int64_t gap = -1;   // offsets between two transactions' events; -1 until learned
};

// One command partition this instance owns.
struct OwnedPartition {
  std::unique_ptr<PartitionStore> store;
};

// What one batch has decided but not yet committed. Nothing here reaches the store or the cache
// unless the transaction commits.
struct StagedBatch {
  struct StagedState {
    int32_t partition = 0;
    int64_t version = 0;
    std::shared_ptr<const google::protobuf::Message> state;
    size_t key_hash = 0;  // StringKeyHash of its cache key, for the cache's Put
  };
  // One per command, in order, on the slot's arena: stable addresses, as delivery callbacks
  // write event positions into them.
  std::vector<v1::CommandResult*> results;
  // The command record of each result (in BatchSlot::records, which outlive this).
  std::vector<const log::Record*> result_records;
  // The parsed command of each result (in BatchSlot::commands, which outlive this), whose
  // command id and correlation id the result's encoder writes (and the record's key as its
  // aggregate id, see ResultFill); nullptr for a result that carries them itself (a copy of
  // an original, a malformed command's).
  std::vector<const ParsedCommand*> result_commands;
  // Views of the results' command ids.
  absl::flat_hash_map<absl::string_view, size_t> result_by_command_id;
  // When its commands were decided: their results' processed_at (left to the encoder, see
  // ProcessorImpl::ProcessedAt) and their events' timestamp. `decided_at`, and for a batch
  // topped up (ProcessBatch) `topped_up_at` from result `topped_up_from` on. Read from the
  // clock once per DecideFrom, not per command (the clock and its conversion were 1.5% of the
  // processing thread).
  google::protobuf::Timestamp decided_at;
  google::protobuf::Timestamp topped_up_at;
  size_t topped_up_from = SIZE_MAX;
  // Stored results of this batch's command ids (read for the whole batch up front); an id of
  // the batch that is not here has no stored result.
  absl::flat_hash_map<std::string, v1::CommandResult> stored_results;
  // (duplicate, original) result indexes of a command id repeated within this batch: the copy is
  // made once the original's event positions are known.
  std::vector<std::pair<size_t, size_t>> in_batch_duplicates;
  // Latest state per aggregate, by cache key.
  absl::flat_hash_map<std::string, StagedState> states;
  std::map<int32_t, int64_t> next_command_offsets;
  std::map<int32_t, int64_t> first_command_offsets;
  std::map<int32_t, int64_t> snapshots_next;
  std::map<int32_t, int64_t> results_next;
  // Snapshots and results as serialized for the log, per partition: the store writes the same
  // bytes once the transaction committed.
  std::map<int32_t, PartitionStore::Update> updates;
  absl::Status delivery_error;
  // Every event's offset was predicted (see EventOffsetTrack): the results go out with the
  // events, and the deliveries are checked before the commit. Otherwise the results wait for
  // the deliveries, which then set the positions.
  bool predicted = true;
  bool prediction_missed = false;
  // Next predicted event offset per partition, while deciding.
  std::map<int32_t, int64_t> next_event_offset;
  // First and last delivered event offset per partition.
  std::map<int32_t, std::pair<int64_t, int64_t>> event_offsets;
  // The events, serialized while deciding and produced by Publish, each with the position in its
  // command's result that its offset fills in. Keys and values one after another in
  // `event_bytes`: no allocation per event.
  struct StagedEvent {
    int32_t partition = 0;
    size_t key_at = 0;
    size_t key_size = 0;
    size_t value_at = 0;
    size_t value_size = 0;
    v1::Position* position = nullptr;
  };
  std::vector<StagedEvent> events;
  std::string event_bytes;
  // Stage end times, for the debug log. Those after `previous_committed` are set on the
  // committer's thread when the batch goes out there.
  absl::Time started, decided, previous_committed, offsets_sent, events_flushed, published,
      committed;
};
// Looked up with StringKeyHash (see Decide).
static_assert(
    std::is_same_v<decltype(StagedBatch::result_by_command_id)::hasher, StringKeyHasher> &&
    std::is_same_v<decltype(StagedBatch::stored_results)::hasher, StringKeyHasher> &&
    std::is_same_v<decltype(StagedBatch::states)::hasher, StringKeyHasher>);

// A polled batch and what it was decided into. The processor has two and alternates: one is
// committed on the committer's thread while the next is decided (see ProcessBatch). Everything
// here keeps its address while its transaction is open: delivery callbacks and the results' dedup
// index point into it.
struct BatchSlot {
  BatchSlot() : arena_block(new char[kArenaBlock]), arena(ArenaOptions(arena_block.get())) {}

  // Starts the next batch in this slot: forgets the last one's messages, unless the committer's
  // thread did that already (ReleaseCommitted).
  void Reset() {
    std::lock_guard<std::mutex> lock(release_mu_);
    if (last_ != Last::kReleased) Release();
    last_ = Last::kInUse;
  }

  // The last batch committed, and the cache and the stores took what they keep (its states are
  // moved out, so dropping it gives no state back to the processor's StatePool, which is not
  // thread-safe): ReleaseCommitted may run on another thread from now on, until Reset.
  void MarkCommitted() {
    std::lock_guard<std::mutex> lock(release_mu_);
    last_ = Last::kCommitted;
  }

  // Forgets a committed last batch ahead of Reset. Its memory is cold by the time the slot is
  // reused, and freeing it (the arena's strings, the maps) was ~20% of the processing thread's
  // cache misses, so the committer's thread does it when it starts the other slot's commit.
  void ReleaseCommitted() {
    std::lock_guard<std::mutex> lock(release_mu_);
    if (last_ != Last::kCommitted) return;
    Release();
    last_ = Last::kReleased;
  }

  std::vector<log::Record> records;
  StagedBatch staged;
  // The batch's parsed commands, one per record: views into the records' values. A deque: the
  // results point at them (StagedBatch::result_commands), and a top-up (ProcessBatch) grows it
  // without moving them, as a vector's growth would.
  std::deque<ParsedCommand> commands;
  // Refilled with each state Prepare serializes; the slot's own, as Prepare may run on the
  // committer's thread while the other slot's batch is decided.
  std::string state_bytes;
  // The batch's results are allocated on `arena` and all dropped at once by Reset. Its first
  // block is the slot's own and survives Reset: 2,000 results fit, a full default batch (10,000,
  // ~360 bytes each for the bank example) takes one more block. (Strings longer than the
  // small-string buffer still allocate their characters.)
  static constexpr size_t kArenaBlock = 2 << 20;
  std::unique_ptr<char[]> arena_block;
  google::protobuf::Arena arena;

 private:
  std::mutex release_mu_;
  // The last batch since Reset: being decided or committed (kInUse), committed and taken by the
  // cache and the stores (MarkCommitted), or already forgotten (ReleaseCommitted).
  enum class Last { kInUse, kCommitted, kReleased };
  Last last_ = Last::kInUse;

  // The buffers keep their capacity and the maps start as large as the last batch needed: the
  // next batch is likely the same size, and growing them again rehashed every entry about twice
  // and copied the event bytes at each doubling (callgrind: 3% of the processing thread).
  void Release() {
    size_t results = staged.result_by_command_id.size();
    size_t states = staged.states.size();
    std::string event_bytes = std::move(staged.event_bytes);
    std::vector<StagedBatch::StagedEvent> events = std::move(staged.events);
    std::vector<v1::CommandResult*> result_messages = std::move(staged.results);
    std::vector<const log::Record*> result_records = std::move(staged.result_records);
    std::vector<const ParsedCommand*> result_commands = std::move(staged.result_commands);
    staged = StagedBatch{};
    event_bytes.clear();
    events.clear();
    result_messages.clear();
    result_records.clear();
    result_commands.clear();
    staged.event_bytes = std::move(event_bytes);
    staged.events = std::move(events);
    staged.results = std::move(result_messages);
    staged.result_records = std::move(result_records);
    staged.result_commands = std::move(result_commands);
    staged.result_by_command_id.reserve(results);
    staged.states.reserve(states);
    arena.Reset();
  }

  static google::protobuf::ArenaOptions ArenaOptions(char* block) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = kArenaBlock;
    options.max_block_size = kArenaBlock;
    return options;
  }
};

class ProcessorImpl final : public Processor {
 public:
  ProcessorImpl(std::shared_ptr<Transport> transport, AggregateDefinition definition,
                ProcessorOptions options, AggregateTopics topics, bool static_member)
      : static_member_(static_member),
        transport_(std::move(transport)),
        log_(transport_->log_internal()),
        definition_(std::move(definition)),
        options_(std::move(options)),
        topics_(std::move(topics)),
        state_type_url_(absl::StrCat("type.googleapis.com/",
                                     definition_.NewState()->GetDescriptor()->full_name())),
        state_pool_(definition_.NewState(), std::min(kStatePoolSize, options_.cache_size)),
        cache_(options_.cache_size, [this](const std::string& key, StateCache::Entry& entry) {
          KeepIfUnwritten(key, entry);
        }) {}

  absl::Status Run() override;
  void Stop() override { stop_.store(true); }
  bool ready() const override { return ready_.load(); }
  ProcessorStats stats() const override {
    return {.commands = commands_.load(),
            .committed = committed_.load(),
            .accepted = accepted_.load(),
            .rejected = rejected_.load(),
            .conflicts = conflicts_.load(),
            .failed = failed_.load(),
            .duplicates = duplicates_.load(),
            .transactions = transactions_.load(),
            .aborted_transactions = aborted_.load(),
            .restored_snapshots = restored_.load()};
  }

 private:
  bool exactly_once() const {
    return options_.guarantee == ProcessorOptions::Guarantee::kExactlyOnce;
  }
  absl::Status OnAssigned(const std::vector<log::TopicPartition>& partitions);
  void OnRevoked(const std::vector<log::TopicPartition>& partitions);
  absl::Status Restore(log::Consumer& reader, int32_t partition, PartitionStore& store);
  absl::Status RebuildFromEvents(log::Consumer& reader, int32_t partition, PartitionStore& store);
  // Reads `topic`/`partition` from `from` to its read_committed end, calling `fn` per record.
  absl::Status ReadToEnd(log::Consumer& reader, const std::string& topic, int32_t partition,
                         int64_t from, const std::function<absl::Status(const log::Record&)>& fn);

  absl::Status ProcessBatch(std::vector<log::Record> records);
  // Decides the slot's records from index `from` on (a batch may grow once, see ProcessBatch).
  absl::Status DecideFrom(BatchSlot& slot, size_t from);
  // Parses the slot's commands from `from` on whose partitions are owned (owned[i - from])
  // into its `commands` (parsed[i - from]: record i parsed) and reads the stored results of
  // their ids, one MultiGet per partition store.
  absl::Status Prefetch(BatchSlot& slot, size_t from, const std::vector<bool>& owned,
                        std::vector<bool>& parsed);
  // `command` is the parsed envelope of `record`, or nullptr if it did not parse.
  absl::Status Decide(const log::Record& record, const ParsedCommand* command, BatchSlot& slot);
  // The offset the next event on `partition` will get, or -1 (unknown; the batch then waits for
  // its deliveries before sending results).
  int64_t PredictEventOffset(int32_t partition, StagedBatch& staged);
  // An aggregate's current state, owned by whoever holds it (this or the committing batch, the
  // cache, the pending writes): valid until the next LoadState. Not a shared_ptr copy: its
  // reference count is touched by the store writer's thread too, and a copy per command cost
  // contended atomics.
  struct StateView {
    int64_t version = 0;
    const google::protobuf::Message* state = nullptr;
    // The batch's own entry, when the state came from it: Decide replaces it there.
    StagedBatch::StagedState* staged = nullptr;
  };
  // `key` is CacheKey(partition, aggregate_id) and `hash` its StringKeyHash: one hash for the
  // four places a state may be in.
  absl::StatusOr<StateView> LoadState(int32_t partition, const std::string& aggregate_id,
                                      const std::string& key, size_t hash, StagedBatch& staged);
  // The committing batch, and the index of its result for `command_id` (`hash`: its
  // StringKeyHash), or nullptr.
  const StagedBatch* CommittingResult(absl::string_view command_id, size_t hash,
                                      size_t& index) const {
    if (committing_ == nullptr) return nullptr;
    const StagedBatch& previous = committing_->staged;
    auto it = previous.result_by_command_id.find(command_id, hash);
    if (it == previous.result_by_command_id.end()) return nullptr;
    index = it->second;
    return &previous;
  }
  // The ids result `index` of `batch` leaves to its encoder: its command's and its record's
  // key (no `identity` for a result that carries them itself).
  static ResultFill IdentityOf(const StagedBatch& batch, size_t index);
  // When the command of `batch`'s result `index` was decided.
  static const google::protobuf::Timestamp* ProcessedAt(const StagedBatch& batch, size_t index) {
    return index >= batch.topped_up_from ? &batch.topped_up_at : &batch.decided_at;
  }
  // `result` = the result `index` of `batch`, with the ids that one left to its encoder.
  static void CopyResult(const StagedBatch& batch, size_t index, v1::CommandResult& result);
  // A cleared result from the slot's arena, appended to its batch for `record` and `command`
  // (nullptr: the result is to carry its identity itself, see StagedBatch::result_commands).
  v1::CommandResult& NewResult(const log::Record& record, const ParsedCommand* command,
                               BatchSlot& slot);
  // Completes a result: processed-at time, type, counters, the in-batch dedup index.
  void StageResult(v1::CommandResult& result, StagedBatch& staged);
  // Serializes the decided batch for the log and the stores: snapshots, and the results when
  // their event positions are predicted. CPU only: runs while the previous batch commits, or on
  // the committer's thread before the batch goes out there (it only reads what Decide reads).
  void Prepare(BatchSlot& slot);
  // The batch commits on the committer's thread while the next one is decided (kOverlapMinBatch).
  bool Overlaps(const BatchSlot& slot) const {
    return slot.records.size() >= std::min(kOverlapMinBatch, options_.max_batch);
  }
  // It also goes out there: its results need no delivery before they are sent (see ProcessBatch).
  bool GoesOutOnCommitter(const BatchSlot& slot) const {
    return Overlaps(slot) && (slot.staged.predicted || !exactly_once());
  }
  // Serializes the results; unpredicted, first copies in-batch repeats from their originals.
  void EncodeResults(StagedBatch& staged);
  // Produces the batch's records into the open transaction; returns once all are delivered.
  absl::Status Publish(StagedBatch& staged);
  // Commits the batch on the committer's thread (the transaction, or at least once the consumer
  // offsets), serializing and publishing its records there first if `publish`; AwaitCommit
  // waits for it.
  void StartCommit(BatchSlot& slot, bool publish);
  // Commits the batch on the calling thread: its transaction (retrying retriable errors), or at
  // least once the consumer offsets.
  absl::Status Commit(StagedBatch& staged);
  // Waits for the committing batch's commit, if one runs. Once it committed, the stores and the
  // cache take the batch and committing_ is cleared; on an error committing_ stays set for
  // Recover. Mid-batch (from Decide) `prune` is false: the batch's results prefetched from the
  // stores miss what was pending then, so no pending entry may go before the batch ends.
  absl::Status AwaitCommit(bool prune = true);
  // AwaitCommit from the rebalance callbacks and on the way out: a failed commit is aborted and
  // rewound there, and an error that stops the processor is kept in callback_error_.
  void SettleCommit();
  // A batch (or two: the committing one and the next) failed with `status`. Returns `status` if
  // the processor must stop; otherwise aborts the open transaction (`transaction_open`), forgets
  // what the batches staged and rewinds the consumer to their first commands, and returns OK.
  absl::Status Recover(absl::Status status, std::vector<BatchSlot*> slots, bool transaction_open);
  // The batch's next command offsets, to commit with it.
  std::vector<log::TopicPartitionOffset> CommandOffsets(const StagedBatch& staged) const;
  // Bookkeeping of a committed batch, then ApplyCommitted (see AwaitCommit for `prune`).
  absl::Status Committed(StagedBatch& staged, bool prune = true);
  absl::Status ApplyCommitted(StagedBatch& staged, bool prune);
  // Forgets pending entries of batches the writer has written.
  void PrunePending();
  // The cache's eviction callback: keeps a state the store writer has not written yet in
  // pending_states_ until it has.
  void KeepIfUnwritten(const std::string& key, StateCache::Entry& entry);
  // Waits for the writer, then forgets every pending entry.
  absl::Status DrainWriter();
  void Rewind(const StagedBatch& staged);

  // A user-given instance id makes this a static group member (Kafka's group.instance.id): a
  // restart with the same id gets its partitions back at once instead of after the session
  // timeout. Generated ids (host-pid) are never reused, so they stay dynamic members.
  bool static_member_;
  std::shared_ptr<Transport> transport_;
  log::Log& log_;
  AggregateDefinition definition_;
  ProcessorOptions options_;
  AggregateTopics topics_;
  const std::string state_type_url_;  // of the snapshots' state Any
  // Superseded states, reused. Declared before every holder of a state (cache_, pending_states_,
  // slots_, last_loaded_): they give their states back to it when destroyed. A batch supersedes
  // at most max_batch states. Spare ones beyond kStatePoolSize, or beyond the cache's size, are
  // freed: memory stays within what the cache setting allows for large states too.
  static constexpr size_t kStatePoolSize = 4096;
  StatePool state_pool_;
  StateCache cache_;

  std::unique_ptr<log::Producer> producer_;
  std::unique_ptr<log::Consumer> consumer_;
  std::map<int32_t, OwnedPartition> owned_;
  std::map<int32_t, EventOffsetTrack> event_tracks_;
  int64_t learned_gap_ = -1;  // the last gap learned on any partition (see EventOffsetTrack)
  // Declared after owned_: destroyed first, so its last writes still find their stores open.
  StoreWriter writer_{2};
  // Committed batches the writer has not written yet, oldest first. Decide reads their results
  // and states from here, not from the stores, which lag behind by those batches.
  // At most the writer's max_pending plus one: Enqueue blocks beyond that.
  struct PendingBatch {
    uint64_t seq = 0;
    std::shared_ptr<const StoreWriter::Batch> batch;
    // Command id (a view into `batch`) -> the result's encoded store value. One index per batch
    // (dropped with it), not one for all: a shared index cost an erase and an insert per result
    // when a batch committed and a lookup and an erase when it was written.
    absl::flat_hash_map<absl::string_view, absl::string_view> results;
  };
  std::deque<PendingBatch> pending_;
  // Written batches dropped by PrunePending, for the committer's thread to free (StartCommit).
  static constexpr size_t kMaxRetired = 4;
  std::vector<std::shared_ptr<const StoreWriter::Batch>> retired_;
  // The encoded result of `id` in the newest pending batch that has one, if any.
  std::optional<absl::string_view> PendingResult(absl::string_view id, size_t hash) const;
  // States the cache let go before the store writer wrote them (see KeepIfUnwritten). Decide
  // looks here after the cache, so usually empty: the cache holds every recent state.
  absl::flat_hash_map<std::string, StateCache::Entry> pending_states_;
  static_assert(std::is_same_v<decltype(PendingBatch::results)::hasher, StringKeyHasher> &&
                std::is_same_v<decltype(pending_states_)::hasher, StringKeyHasher>);
  // Two batches: while one commits on committer_'s thread the next is decided in the other.
  BatchSlot slots_[2];
  size_t next_slot_ = 0;
  // The slot whose commit runs (or ran and was not awaited yet), or nullptr. Decide reads its
  // results and states: they are the newest, ahead of the cache and the stores.
  BatchSlot* committing_ = nullptr;
  // The committing batch goes out on the committer's thread and its results get their event
  // positions on delivery (not predicted: at least once). Decide then waits for that batch
  // before it copies one of its results.
  bool committing_unsettled_ = false;
  // The committing batch's failure, kept until Recover: AwaitCommit may run from Decide (above)
  // and again from ProcessBatch, and both must see it.
  absl::Status commit_error_;
  // Runs one commit at a time. Declared after producer_: destroyed (joined) before it.
  BackgroundWriter committer_{1, "lf-commit"};
  // The state LoadState read last from a store (the cache may not keep it).
  std::shared_ptr<const google::protobuf::Message> last_loaded_;
  // Bytes per encoded result in the last batch (EncodeResults sizes the next batch's buffers by
  // it). Atomic: a batch may be encoded on the committer's thread or on this one.
  std::atomic<size_t> result_bytes_hint_{128};
  // Decide's result, reused from command to command (its events keep their capacity).
  DecideResult decided_;
  // A restore failure inside the rebalance callback; Run returns it.
  absl::Status callback_error_;
  // Counts OnRevoked calls, so a batch can tell that partitions went while it polled.
  uint64_t revocations_ = 0;

  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  std::atomic<int64_t> commands_{0}, committed_{0}, accepted_{0}, rejected_{0}, conflicts_{0},
      failed_{0}, duplicates_{0}, transactions_{0}, aborted_{0}, restored_{0};
};

absl::Status ProcessorImpl::Run() {
  std::string group = options_.group;
  absl::StatusOr<std::unique_ptr<log::Producer>> producer = log_.NewProducer(
      {.transactional_id =
           exactly_once() ? absl::StrCat(group, "-", options_.instance_id) : std::string(),
       .transaction_timeout = options_.transaction_timeout});
  if (!producer.ok()) return producer.status();
  producer_ = *std::move(producer);
  log::ConsumerOptions consumer_options{.group_id = group};
  if (static_member_) consumer_options.instance_id = options_.instance_id;
  absl::StatusOr<std::unique_ptr<log::Consumer>> consumer = log_.NewConsumer(consumer_options);
  if (!consumer.ok()) return consumer.status();
  consumer_ = *std::move(consumer);

  log::RebalanceListener listener{
      .on_assigned =
          [this](const std::vector<log::TopicPartition>& partitions) {
            absl::Status s = OnAssigned(partitions);
            if (!s.ok() && callback_error_.ok()) callback_error_ = s;
          },
      .on_revoked =
          [this](const std::vector<log::TopicPartition>& partitions) { OnRevoked(partitions); },
  };
  if (absl::Status s = consumer_->Subscribe({topics_.commands}, listener); !s.ok()) return s;
  LogInfo(kComponent, "started",
          {{"type", definition_.type()},
           {"group", group},
           {"backend", log_.backend()},
           {"guarantee", exactly_once() ? "exactly_once" : "at_least_once"}});

  absl::Status result;
  while (!stop_.load()) {
    absl::StatusOr<std::vector<log::Record>> batch =
        consumer_->Poll(options_.max_batch, options_.max_batch_delay);
    if (!callback_error_.ok()) {
      result = callback_error_;
      break;
    }
    if (!batch.ok()) {
      if (log::ClassifyError(batch.status()) == ErrorClass::kRetriable) continue;
      result = batch.status();
      break;
    }
    if (!owned_.empty()) ready_.store(true);
    if (batch->empty()) {
      // Nothing new: finish the committing batch now rather than with the next one.
      SettleCommit();
      continue;
    }
    if (absl::Status s = ProcessBatch(*std::move(batch)); !s.ok()) {
      result = s;
      break;
    }
  }
  SettleCommit();
  if (!callback_error_.ok() && result.ok()) result = callback_error_;
  if (!result.ok()) {
    LogError(kComponent, "stopping on error",
             {{"type", definition_.type()}, {"error", result.ToString()}});
  }
  (void)consumer_->Close();
  (void)producer_->Close();
  if (absl::Status s = DrainWriter(); !s.ok() && result.ok()) result = s;
  owned_.clear();
  ready_.store(false);
  LogInfo(kComponent, "stopped", {{"type", definition_.type()}});
  return result;
}

absl::Status ProcessorImpl::OnAssigned(const std::vector<log::TopicPartition>& partitions) {
  if (partitions.empty()) return absl::OkStatus();
  SettleCommit();
  if (!callback_error_.ok()) return callback_error_;
  if (absl::Status s = DrainWriter(); !s.ok()) return s;
  // One reader (no group) restores every partition, re-assigned per changelog.
  absl::StatusOr<std::unique_ptr<log::Consumer>> reader = log_.NewConsumer({});
  if (!reader.ok()) return reader.status();
  for (const log::TopicPartition& tp : partitions) {
    std::string dir = (std::filesystem::path(options_.state_dir) / definition_.type() /
                       absl::StrCat("p", tp.partition))
                          .string();
    absl::StatusOr<std::unique_ptr<PartitionStore>> store = PartitionStore::Open(
        dir,
        {.dedup_window = options_.dedup_window, .dedup_filter_keys = options_.dedup_filter_ids});
    if (!store.ok()) return store.status();
    absl::Time start = absl::Now();
    if (absl::Status s = Restore(**reader, tp.partition, **store); !s.ok()) return s;
    LogInfo(kComponent, "partition assigned",
            {{"type", definition_.type()},
             {"partition", absl::StrCat(tp.partition)},
             {"restore_ms", absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - start))}});
    owned_[tp.partition].store = *std::move(store);
  }
  return absl::OkStatus();
}

void ProcessorImpl::OnRevoked(const std::vector<log::TopicPartition>& partitions) {
  // The last batch may still be committing (its successor is polled meanwhile): finish it, or
  // abort it, before the partitions go. Then only the store writer may still be busy.
  ++revocations_;
  SettleCommit();
  if (absl::Status s = DrainWriter(); !s.ok() && callback_error_.ok()) callback_error_ = s;
  for (const log::TopicPartition& tp : partitions) {
    owned_.erase(tp.partition);
    event_tracks_.erase(tp.partition);
    LogInfo(kComponent, "partition revoked",
            {{"type", definition_.type()}, {"partition", absl::StrCat(tp.partition)}});
  }
  cache_.Clear();
}

absl::Status ProcessorImpl::ReadToEnd(log::Consumer& reader, const std::string& topic,
                                      int32_t partition, int64_t from,
                                      const std::function<absl::Status(const log::Record&)>& fn) {
  // Read only once no transaction is open on the partition. A previous owner's last commit may
  // still lack its markers, or a dead owner's transaction may be open until the broker aborts
  // it; the stable end before then would miss committed state.
  absl::Time deadline = absl::Now() + options_.transaction_timeout + absl::Seconds(30);
  absl::Time next_log = absl::Now() + absl::Seconds(5);
  int64_t end = 0;
  for (;;) {
    absl::StatusOr<std::vector<int64_t>> stable =
        log_.admin().EndOffsets(topic, log::Isolation::kReadCommitted);
    if (!stable.ok()) return stable.status();
    absl::StatusOr<std::vector<int64_t>> high =
        log_.admin().EndOffsets(topic, log::Isolation::kReadUncommitted);
    if (!high.ok()) return high.status();
    if (partition >= static_cast<int32_t>(stable->size()) ||
        partition >= static_cast<int32_t>(high->size())) {
      return absl::FailedPreconditionError(absl::StrCat(topic, " has no partition ", partition));
    }
    end = (*stable)[partition];
    if (end >= (*high)[partition]) break;
    if (absl::Now() > deadline) {
      return log::RetriableError(absl::StrCat("a transaction on ", topic, "/", partition,
                                              " stayed open past the transaction timeout"));
    }
    if (absl::Now() > next_log) {
      next_log = absl::Now() + absl::Seconds(5);
      LogInfo(kComponent, "waiting for an open transaction of the previous owner to resolve",
              {{"topic", topic}, {"partition", absl::StrCat(partition)}});
    }
    absl::SleepFor(absl::Milliseconds(50));  // polling a broker-side condition, with a deadline
  }
  if (from >= end) return absl::OkStatus();
  if (absl::Status s = reader.Assign({{{topic, partition}, from}}); !s.ok()) return s;
  // The end may sit past transaction markers that no record reaches; the position moves past
  // them (the kafka consumer's end-of-partition event, the embedded log's gap skipping). A long
  // stretch without progress is the last resort only: stopping early would leave the store
  // without states or dedup entries it must have, and a first fetch right after a crash (the
  // broker aborting the dead instance's transaction, a loaded machine) can take a second or more.
  constexpr absl::Duration kIdleLimit = absl::Seconds(15);
  int64_t position = from;
  absl::Time last_progress = absl::Now();
  while (position < end) {
    if (absl::Now() - last_progress > kIdleLimit) {
      LogWarning(kComponent, "changelog read made no progress; restoring what was read",
                 {{"topic", topic},
                  {"partition", absl::StrCat(partition)},
                  {"position", absl::StrCat(position)},
                  {"end", absl::StrCat(end)}});
      break;
    }
    absl::StatusOr<std::vector<log::Record>> batch = reader.Poll(10000, absl::Milliseconds(50));
    if (!batch.ok()) {
      if (log::ClassifyError(batch.status()) == ErrorClass::kRetriable) continue;
      return batch.status();
    }
    int64_t before = position;
    for (const log::Record& record : *batch) {
      if (record.offset >= end) {
        position = end;
        break;
      }
      if (absl::Status s = fn(record); !s.ok()) return s;
      position = record.offset + 1;
    }
    reader.Recycle(*std::move(batch));  // `fn` keeps nothing of the records
    absl::StatusOr<int64_t> p = reader.Position({topic, partition});
    if (p.ok()) position = std::max(position, *p);
    if (position > before) last_progress = absl::Now();
  }
  return absl::OkStatus();
}

absl::Status ProcessorImpl::Restore(log::Consumer& reader, int32_t partition,
                                    PartitionStore& store) {
  bool rebuild =
      store.definition_version() != 0 && store.definition_version() != definition_.version();
  // What has been read and not yet written, and how far each changelog has been read; written
  // in chunks so a large restore neither holds everything in memory nor starts over.
  PartitionStore::Update update;
  update.replay = true;
  int64_t snapshots_next = store.snapshots_next();
  int64_t results_next = store.results_next();
  auto flush = [&]() -> absl::Status {
    update.snapshots_next = snapshots_next;
    update.results_next = results_next;
    absl::Status s = store.Write(update);
    update.snapshots.clear();
    update.results.clear();
    return s;
  };
  auto flush_when_full = [&]() -> absl::Status {
    size_t pending = update.snapshots.size() + update.results.size();
    return pending >= kRestoreChunk ? flush() : absl::OkStatus();
  };

  // Snapshots: the compacted changelog, from where this store left off.
  if (!rebuild) {
    absl::Status s = ReadToEnd(
        reader, topics_.snapshots, partition, snapshots_next, [&](const log::Record& record) {
          snapshots_next = record.offset + 1;
          v1::Snapshot snapshot;
          if (!snapshot.ParseFromString(record.value)) {
            return absl::DataLossError(absl::StrCat("unreadable snapshot at ", topics_.snapshots,
                                                    "/", partition, "@", record.offset));
          }
          if (snapshot.definition_version() != definition_.version()) {
            rebuild = true;
            return absl::CancelledError("definition version changed");
          }
          update.snapshots.push_back(std::move(snapshot));
          restored_.fetch_add(1);
          return flush_when_full();
        });
    if (!s.ok() && !rebuild) return s;
  }
  if (rebuild) {
    update.snapshots.clear();
    if (absl::Status s = RebuildFromEvents(reader, partition, store); !s.ok()) return s;
    snapshots_next = store.snapshots_next();  // the rebuild skipped the stale snapshots
  }

  // Results: the deduplication index, from the results topic (its retention is the window).
  absl::Status s = ReadToEnd(reader, topics_.results, partition, results_next,
                             [&](const log::Record& record) -> absl::Status {
                               results_next = record.offset + 1;
                               v1::CommandResult result;
                               if (!result.ParseFromString(record.value)) return absl::OkStatus();
                               update.results.push_back(std::move(result));
                               return flush_when_full();
                             });
  if (!s.ok()) return s;
  update.definition_version = definition_.version();
  return flush();
}

absl::Status ProcessorImpl::RebuildFromEvents(log::Consumer& reader, int32_t partition,
                                              PartitionStore& store) {
  LogWarning(kComponent, "definition version changed: rebuilding states from events",
             {{"type", definition_.type()},
              {"partition", absl::StrCat(partition)},
              {"version", absl::StrCat(definition_.version())}});
  if (absl::Status s = store.DropSnapshots(); !s.ok()) return s;
  // Folded states not yet written, by aggregate id.
  absl::flat_hash_map<std::string, v1::Snapshot> pending;
  int64_t events = 0;
  auto flush = [&]() -> absl::Status {
    PartitionStore::Update update;
    for (auto& [id, snapshot] : pending) update.snapshots.push_back(std::move(snapshot));
    pending.clear();
    return store.Write(update);
  };
  absl::Status s = ReadToEnd(reader, topics_.events, partition, 0, [&](const log::Record& record) {
    v1::EventEnvelope event;
    if (!event.ParseFromString(record.value)) {
      return absl::DataLossError(
          absl::StrCat("unreadable event at ", topics_.events, "/", partition, "@", record.offset));
    }
    auto it = pending.find(event.aggregate_id());
    if (it == pending.end()) {
      absl::StatusOr<std::optional<v1::Snapshot>> stored = store.GetSnapshot(event.aggregate_id());
      if (!stored.ok()) return stored.status();
      v1::Snapshot fresh;
      if (stored->has_value()) {
        fresh = **stored;
      } else {
        fresh.set_aggregate_type(definition_.type());
        fresh.set_aggregate_id(event.aggregate_id());
        fresh.mutable_state()->PackFrom(*definition_.NewState());
      }
      it = pending.emplace(event.aggregate_id(), std::move(fresh)).first;
    }
    v1::Snapshot& snapshot = it->second;
    std::unique_ptr<google::protobuf::Message> state = definition_.NewState();
    if (!snapshot.state().UnpackTo(state.get())) return absl::DataLossError("bad state");
    if (absl::Status a = definition_.Apply(*state, event.payload()); !a.ok()) {
      return absl::Status(
          a.code(), absl::StrCat("rebuilding ", event.aggregate_id(), " at ", topics_.events, "/",
                                 partition, "@", record.offset, ": ", a.message()));
    }
    snapshot.mutable_state()->PackFrom(*state);
    snapshot.set_version(event.version());
    snapshot.set_definition_version(definition_.version());
    if (++events % 100000 == 0) {
      LogInfo(kComponent, "rebuild progress",
              {{"partition", absl::StrCat(partition)}, {"events", absl::StrCat(events)}});
    }
    return pending.size() >= kRestoreChunk ? flush() : absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (absl::Status f = flush(); !f.ok()) return f;
  // The snapshots topic still holds the old version's snapshots: skip them from now on.
  absl::StatusOr<std::vector<int64_t>> ends =
      log_.admin().EndOffsets(topics_.snapshots, log::Isolation::kReadCommitted);
  if (!ends.ok()) return ends.status();
  PartitionStore::Update done;
  done.snapshots_next = (*ends)[partition];
  done.definition_version = definition_.version();
  LogInfo(kComponent, "rebuild done",
          {{"partition", absl::StrCat(partition)}, {"events", absl::StrCat(events)}});
  return store.Write(done);
}

int64_t ProcessorImpl::PredictEventOffset(int32_t partition, StagedBatch& staged) {
  if (auto next = staged.next_event_offset.find(partition);
      next != staged.next_event_offset.end()) {
    return next->second++;
  }
  // Only inside a transaction: a missed prediction must be abortable, and records of the
  // at-least-once producer are visible on delivery.
  auto track = event_tracks_.find(partition);
  const bool tracked = track != event_tracks_.end() && track->second.last >= 0;
  const int64_t gap = tracked && track->second.gap >= 0 ? track->second.gap : learned_gap_;
  if (!exactly_once() || !tracked || gap < 0) {
    staged.predicted = false;
    return -1;
  }
  // The newest transaction with events here: the committing batch's (which may still be going
  // out: its own predictions then, checked before it commits, and this batch is dropped with it
  // should they miss), else the last committed one's.
  int64_t last = track->second.last;
  if (committing_ != nullptr) {
    const StagedBatch& previous = committing_->staged;
    if (previous.predicted) {
      auto it = previous.next_event_offset.find(partition);
      if (it != previous.next_event_offset.end()) last = it->second - 1;
    } else {
      auto it = previous.event_offsets.find(partition);  // delivered before it was handed over
      if (it != previous.event_offsets.end()) last = it->second.second;
    }
  }
  int64_t next = last + 1 + gap;
  staged.next_event_offset.emplace(partition, next + 1);
  return next;
}

absl::StatusOr<ProcessorImpl::StateView> ProcessorImpl::LoadState(int32_t partition,
                                                                  const std::string& aggregate_id,
                                                                  const std::string& key,
                                                                  size_t hash,
                                                                  StagedBatch& staged) {
  if (auto it = staged.states.find(key, hash); it != staged.states.end()) {
    return StateView{it->second.version, it->second.state.get(), &it->second};
  }
  if (committing_ != nullptr) {
    const StagedBatch& previous = committing_->staged;
    if (auto it = previous.states.find(key, hash); it != previous.states.end()) {
      return StateView{it->second.version, it->second.state.get()};
    }
  }
  if (const StateCache::Entry* cached = cache_.Get(key, hash)) {
    return StateView{cached->version, cached->state.get()};
  }
  if (auto it = pending_states_.find(key, hash); it != pending_states_.end()) {
    return StateView{it->second.version, it->second.state.get()};
  }
  std::unique_ptr<google::protobuf::Message> state = state_pool_.Take();
  state->Clear();
  int64_t version = 0;
  absl::StatusOr<std::optional<v1::Snapshot>> snapshot =
      owned_.at(partition).store->GetSnapshot(aggregate_id);
  if (!snapshot.ok()) return snapshot.status();
  if (snapshot->has_value()) {
    if (!(*snapshot)->state().UnpackTo(state.get())) {
      return absl::DataLossError(absl::StrCat("stored state of ", aggregate_id, " is unreadable"));
    }
    version = (*snapshot)->version();
  }
  // Owned here at least until the next LoadState: the cache may not keep it (size 0).
  last_loaded_ = state_pool_.Share(std::move(state));
  cache_.Put(key, hash, {version, last_loaded_});
  return StateView{version, last_loaded_.get()};
}

v1::CommandResult& ProcessorImpl::NewResult(const log::Record& record, const ParsedCommand* command,
                                            BatchSlot& slot) {
  StagedBatch& staged = slot.staged;
  auto* result = google::protobuf::Arena::CreateMessage<v1::CommandResult>(&slot.arena);
  staged.results.push_back(result);
  staged.result_records.push_back(&record);
  staged.result_commands.push_back(command);
  return *result;
}

ResultFill ProcessorImpl::IdentityOf(const StagedBatch& batch, size_t index) {
  ResultFill fill;
  fill.processed_at = ProcessedAt(batch, index);
  if (const ParsedCommand* command = batch.result_commands[index]; command != nullptr) {
    fill.identity = true;
    fill.command_id = command->fields.command_id;
    fill.aggregate_id = batch.result_records[index]->key;
    fill.correlation_id = command->correlation_id;
  }
  return fill;
}

void ProcessorImpl::CopyResult(const StagedBatch& batch, size_t index, v1::CommandResult& result) {
  result = *batch.results[index];
  if (ResultFill identity = IdentityOf(batch, index); identity.identity) {
    result.set_command_id(identity.command_id.data(), identity.command_id.size());
    result.set_aggregate_id(identity.aggregate_id.data(), identity.aggregate_id.size());
    result.set_correlation_id(identity.correlation_id.data(), identity.correlation_id.size());
  }
  // Sent again as is: with its own batch's time, which the encoder of this one would not write.
  if (!result.has_processed_at()) *result.mutable_processed_at() = *ProcessedAt(batch, index);
}

void ProcessorImpl::StageResult(v1::CommandResult& result, StagedBatch& staged) {
  // The aggregate type (and the events topic of its positions) are left to the encoder
  // (EncodeResults): the same in every result; so is processed_at, the same for a batch's
  // commands (ProcessedAt).
  switch (result.outcome()) {
    case v1::CommandResult::ACCEPTED:
      accepted_.fetch_add(1);
      break;
    case v1::CommandResult::REJECTED:
      rejected_.fetch_add(1);
      break;
    case v1::CommandResult::CONFLICT:
      conflicts_.fetch_add(1);
      break;
    case v1::CommandResult::FAILED:
      failed_.fetch_add(1);
      break;
    default:
      break;
  }
  // A view of the command's id: the command outlives the batch's index.
  if (const ParsedCommand* command = staged.result_commands.back();
      command != nullptr && !command->fields.command_id.empty()) {
    staged.result_by_command_id[command->fields.command_id] = staged.results.size() - 1;
  }
}

absl::Status ProcessorImpl::DecideFrom(BatchSlot& slot, size_t from) {
  StagedBatch& staged = slot.staged;
  if (from == 0) {
    staged.decided_at = ProtoNow();
  } else {
    staged.topped_up_at = ProtoNow();
    staged.topped_up_from = staged.results.size();
  }
  // owned[i - from]: record i's partition is still this instance's (not revoked while
  // polling). Looked up, like the batch's offsets, once per run of records of one partition
  // (a poll returns them partition by partition), not per record.
  std::vector<bool> owned(slot.records.size() - from, false);
  int32_t run_partition = 0;
  bool run_owned = false;
  int64_t* run_next = nullptr;
  for (size_t i = from; i < slot.records.size(); ++i) {
    const log::Record& record = slot.records[i];
    if (i == from || record.partition != run_partition) {
      run_partition = record.partition;
      run_owned = owned_.contains(run_partition);
      if (run_owned) {
        staged.first_command_offsets.emplace(run_partition, record.offset);
        run_next = &staged.next_command_offsets[run_partition];
      }
    }
    if (!run_owned) continue;
    owned[i - from] = true;
    *run_next = record.offset + 1;
  }
  std::vector<bool> parsed;
  absl::Status status = Prefetch(slot, from, owned, parsed);
  for (size_t i = from; i < slot.records.size() && status.ok(); ++i) {
    if (!owned[i - from]) continue;
    status = Decide(slot.records[i], parsed[i - from] ? &slot.commands[i] : nullptr, slot);
  }
  return status;
}

absl::Status ProcessorImpl::Prefetch(BatchSlot& slot, size_t from, const std::vector<bool>& owned,
                                     std::vector<bool>& parsed) {
  const std::vector<log::Record>& records = slot.records;
  StagedBatch& staged = slot.staged;
  if (slot.commands.size() < records.size()) slot.commands.resize(records.size());
  parsed.assign(records.size() - from, false);
  std::map<int32_t, std::vector<absl::string_view>> ids;
  std::vector<absl::string_view>* run_ids = nullptr;  // ids[run_partition]
  int32_t run_partition = 0;
  for (size_t i = from; i < records.size(); ++i) {
    const log::Record& record = records[i];
    if (!owned[i - from]) continue;
    ParsedCommand& command = slot.commands[i];
    parsed[i - from] = ParseCommandEnvelope(record.value, command);
    if (parsed[i - from] && !command.fields.command_id.empty()) {
      if (run_ids == nullptr || record.partition != run_partition) {
        run_partition = record.partition;
        run_ids = &ids[run_partition];
      }
      run_ids->push_back(command.fields.command_id);
    }
  }
  for (const auto& [partition, partition_ids] : ids) {
    absl::StatusOr<std::vector<std::optional<v1::CommandResult>>> found =
        owned_.at(partition).store->GetResults(partition_ids);
    if (!found.ok()) return found.status();
    for (size_t k = 0; k < partition_ids.size(); ++k) {
      if ((*found)[k].has_value()) {
        staged.stored_results.try_emplace(std::string(partition_ids[k]), *std::move((*found)[k]));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ProcessorImpl::Decide(const log::Record& record, const ParsedCommand* parsed,
                                   BatchSlot& slot) {
  StagedBatch& staged = slot.staged;
  commands_.fetch_add(1);
  // Its command id, aggregate id (the record's key) and correlation id are the command's,
  // written by its encoder (ResultFill).
  v1::CommandResult& result = NewResult(record, parsed, slot);
  auto reject = [&](absl::StatusCode code, std::string message) {
    result.set_outcome(v1::CommandResult::REJECTED);
    result.set_code(static_cast<int32_t>(code));
    result.set_message(std::move(message));
    StageResult(result, staged);
    return absl::OkStatus();
  };
  if (parsed == nullptr) {
    result.set_aggregate_id(record.key);
    return reject(absl::StatusCode::kInvalidArgument,
                  absl::StrCat("malformed command envelope at ", topics_.commands, "/",
                               record.partition, "@", record.offset));
  }
  const CommandFields& command = parsed->fields;
  if (command.command_id.empty()) {
    return reject(absl::StatusCode::kInvalidArgument, "command_id is empty");
  }
  if (command.aggregate_id.empty() || command.aggregate_id != record.key) {
    return reject(absl::StatusCode::kInvalidArgument,
                  "aggregate_id is empty or differs from the record key");
  }

  // At most once per command id: an earlier result (this batch, the committing one, or stored)
  // is sent again as is. The committing batch's results are complete, or else (their positions
  // still being delivered, see committing_unsettled_) waited for.
  // A staged original (this batch's or the committing one's) is copied with CopyResult: it
  // leaves its identity to its encoder.
  const StagedBatch* staged_original = nullptr;
  size_t staged_index = 0;
  const v1::CommandResult* original = nullptr;
  std::optional<v1::CommandResult> stored;
  // Hashed once for the four indexes below.
  const size_t id_hash = StringKeyHash(command.command_id);
  auto in_batch = staged.result_by_command_id.find(command.command_id, id_hash);
  size_t committing_index = 0;
  const StagedBatch* committing = CommittingResult(command.command_id, id_hash, committing_index);
  if (in_batch == staged.result_by_command_id.end() && committing != nullptr &&
      committing_unsettled_) {
    // Its positions are still being delivered: wait for that batch. Its results are then
    // pending ones, found below.
    if (absl::Status s = AwaitCommit(/*prune=*/false); !s.ok()) return s;
    committing = nullptr;
  }
  if (in_batch != staged.result_by_command_id.end()) {
    staged.in_batch_duplicates.emplace_back(staged.results.size() - 1, in_batch->second);
    staged_original = &staged;
    staged_index = in_batch->second;
  } else if (committing != nullptr) {
    staged_original = committing;
    staged_index = committing_index;
  } else if (std::optional<absl::string_view> pending = PendingResult(command.command_id, id_hash);
             pending.has_value()) {
    absl::StatusOr<v1::CommandResult> decoded = PartitionStore::DecodeResult(*pending);
    if (!decoded.ok()) return decoded.status();
    stored = *std::move(decoded);
    original = &*stored;
  } else if (auto hit = staged.stored_results.empty()
                            ? staged.stored_results.end()
                            : staged.stored_results.find(command.command_id, id_hash);
             hit != staged.stored_results.end()) {
    original = &hit->second;
  }
  if (staged_original != nullptr || original != nullptr) {
    duplicates_.fetch_add(1);
    if (staged_original != nullptr) {
      CopyResult(*staged_original, staged_index, result);
    } else {
      result = *original;
    }
    staged.result_commands.back() = nullptr;  // it carries its identity now
    return absl::OkStatus();
  }

  // The command's aggregate id is the record's key (checked above).
  const std::string& aggregate_id = record.key;
  std::string cache_key = CacheKey(record.partition, aggregate_id);
  const size_t key_hash = StringKeyHash(cache_key);
  absl::StatusOr<StateView> current =
      LoadState(record.partition, aggregate_id, cache_key, key_hash, staged);
  if (!current.ok()) return current.status();
  result.set_version(current->version);
  if (parsed->expected_version.has_value() && *parsed->expected_version != current->version) {
    result.set_outcome(v1::CommandResult::CONFLICT);
    result.set_code(static_cast<int32_t>(absl::StatusCode::kAborted));
    result.set_message(absl::StrCat("expected version ", *parsed->expected_version,
                                    ", but the aggregate is at version ", current->version));
    StageResult(result, staged);
    return absl::OkStatus();
  }

  DecideResult& decided = decided_;  // reused: its events keep their strings' capacity
  if (decided.new_state == nullptr) decided.new_state = state_pool_.Take();
  definition_.DecideInto(*current->state, command, Version(current->version), decided);
  if (decided.kind != DecideResult::Kind::kAccepted) {
    result.set_outcome(decided.kind == DecideResult::Kind::kRejected ? v1::CommandResult::REJECTED
                                                                     : v1::CommandResult::FAILED);
    result.set_code(static_cast<int32_t>(decided.status.code()));
    result.set_message(std::string(decided.status.message()));
    StageResult(result, staged);
    return absl::OkStatus();
  }

  int64_t version = current->version;
  result.set_outcome(v1::CommandResult::ACCEPTED);
  result.set_event_count(static_cast<int32_t>(decided.events.size()));
  result.set_version(version + static_cast<int64_t>(decided.events.size()));
  StageResult(result, staged);
  const google::protobuf::Timestamp* decided_at = ProcessedAt(staged, staged.results.size() - 1);
  v1::CommandResult* staged_result = &result;
  staged_result->mutable_event_positions()->Reserve(static_cast<int>(decided.events.size()));
  for (const google::protobuf::Any& payload : decided.events) {
    ++version;
    v1::Position* position = staged_result->add_event_positions();
    // Predicted from the committing batch's or the last committed one's (PredictEventOffset).
    int64_t predicted = PredictEventOffset(record.partition, staged);
    // Its topic is the events topic, written by the encoder. An offset of -1 stands for "not
    // predicted" until the delivery fills it in.
    position->set_partition(record.partition);
    position->set_offset(predicted);
    // Produced by Publish, once the previous batch committed.
    StagedBatch::StagedEvent& staged_event = staged.events.emplace_back();
    staged_event.partition = record.partition;
    staged_event.position = position;
    staged_event.key_at = staged.event_bytes.size();
    staged_event.key_size = command.aggregate_id.size();
    staged.event_bytes.append(aggregate_id);
    staged_event.value_at = staged.event_bytes.size();
    AppendEventEnvelope({.aggregate_type = definition_.type(),
                         .aggregate_id = command.aggregate_id,
                         .version = version,
                         .command_id = command.command_id,
                         .payload = &payload,
                         .timestamp = decided_at,
                         .correlation_id = parsed->correlation_id},
                        &staged.event_bytes);
    staged_event.value_size = staged.event_bytes.size() - staged_event.value_at;
  }
  if (version > current->version) {
    StagedBatch::StagedState state{.partition = record.partition,
                                   .version = version,
                                   .state = state_pool_.Share(std::move(decided.new_state)),
                                   .key_hash = key_hash};
    if (current->staged != nullptr) {  // the batch's own entry (no insert since LoadState)
      *current->staged = std::move(state);
    } else {
      staged.states.emplace(std::move(cache_key), std::move(state));
    }
  }
  return absl::OkStatus();
}

std::vector<log::TopicPartitionOffset> ProcessorImpl::CommandOffsets(
    const StagedBatch& staged) const {
  std::vector<log::TopicPartitionOffset> offsets;
  for (auto [partition, next] : staged.next_command_offsets) {
    offsets.push_back({{topics_.commands, partition}, next});
  }
  return offsets;
}

void ProcessorImpl::Prepare(BatchSlot& slot) {
  StagedBatch& staged = slot.staged;
  // Serialized once: the log gets a copy, the store these bytes after the commit.
  google::protobuf::Timestamp now = ProtoNow();
  for (auto& [key, state] : staged.states) {
    size_t slash = key.find('/') + 1;
    absl::string_view aggregate_id(key.data() + slash, key.size() - slash);
    std::string& state_bytes = slot.state_bytes;
    state.state->SerializeToString(&state_bytes);
    staged.updates[state.partition].encoded_snapshots.Append(aggregate_id, [&](std::string* out) {
      AppendSnapshot({.aggregate_type = definition_.type(),
                      .aggregate_id = aggregate_id,
                      .version = state.version,
                      .definition_version = definition_.version(),
                      .state_type_url = state_type_url_,
                      .state_value = state_bytes,
                      .timestamp = &now},
                     out);
    });
  }
  if (staged.predicted) EncodeResults(staged);
}

void ProcessorImpl::EncodeResults(StagedBatch& staged) {
  // A repeat copied its original when decided. Predicted, that copy was complete; else the
  // original's positions came with the deliveries since. (Not rewriting a predicted one keeps
  // the committer from writing what the next batch may read.)
  if (!staged.predicted) {
    for (auto [duplicate, original] : staged.in_batch_duplicates) {
      CopyResult(staged, original, *staged.results[duplicate]);
    }
  }
  std::map<int32_t, size_t> per_partition;
  for (const log::Record* record : staged.result_records) ++per_partition[record->partition];
  for (auto [partition, count] : per_partition) {
    // Sized for results as large as the last batch's (within a few bytes) on average.
    staged.updates[partition].encoded_results.Reserve(
        count, count * result_bytes_hint_.load(std::memory_order_relaxed));
  }
  for (size_t i = 0; i < staged.results.size(); ++i) {
    ResultFill fill = IdentityOf(staged, i);
    fill.aggregate_type = definition_.type();
    fill.events_topic = topics_.events;
    const v1::CommandResult& result = *staged.results[i];
    PartitionStore::AddEncodedResult(
        result, fill, fill.CommandIdOf(result),
        staged.updates[staged.result_records[i]->partition].encoded_results);
  }
  if (!staged.results.empty()) {
    size_t bytes = 0;
    for (auto [partition, count] : per_partition) {
      bytes += staged.updates[partition].encoded_results.bytes();
    }
    result_bytes_hint_.store(bytes / staged.results.size() + 8, std::memory_order_relaxed);
  }
}

absl::Status ProcessorImpl::Publish(StagedBatch& staged) {
  // Round trips dominate a batch on Kafka, so the independent ones overlap: snapshots travel with
  // the events (the offsets were added before either, see ProcessBatch). Results wait for the
  // events' positions only while those are not predicted.
  auto track = [&staged](std::map<int32_t, int64_t>* next) {
    return [next, &staged](const absl::StatusOr<log::TopicPartitionOffset>& delivered) {
      if (!delivered.ok()) {
        if (staged.delivery_error.ok()) staged.delivery_error = delivered.status();
        return;
      }
      int64_t& n = (*next)[delivered->tp.partition];
      n = std::max(n, delivered->offset + 1);
    };
  };
  // Views of the bytes staged for each event, snapshot and result: the log copies them
  // (ProduceCopy), once.
  log::OutgoingRecordRef outgoing;
  outgoing.topic = topics_.events;
  const absl::string_view event_bytes = staged.event_bytes;
  for (const StagedBatch::StagedEvent& event : staged.events) {
    outgoing.key = event_bytes.substr(event.key_at, event.key_size);
    outgoing.value = event_bytes.substr(event.value_at, event.value_size);
    outgoing.partition = event.partition;
    v1::Position* position = event.position;
    absl::Status produced = producer_->ProduceCopy(
        outgoing,
        // Two pointers fit std::function's inline storage: no allocation per event. A position
        // with an offset holds the predicted one (Decide).
        [position, &staged](const absl::StatusOr<log::TopicPartitionOffset>& delivered) {
          if (!delivered.ok()) {
            if (staged.delivery_error.ok()) staged.delivery_error = delivered.status();
            return;
          }
          if (position->offset() >= 0) {
            // Predicted: only checked. The result may be read meanwhile (the next batch copies
            // it for a duplicate command) when this batch goes out on the committer's thread.
            if (delivered->offset != position->offset()) staged.prediction_missed = true;
          } else {
            position->set_partition(delivered->tp.partition);
            position->set_offset(delivered->offset);
          }
          auto [it, fresh] = staged.event_offsets.try_emplace(delivered->tp.partition,
                                                              delivered->offset, delivered->offset);
          if (!fresh) {
            it->second.first = std::min(it->second.first, delivered->offset);
            it->second.second = std::max(it->second.second, delivered->offset);
          }
        });
    if (!produced.ok()) return produced;
  }
  outgoing.topic = topics_.snapshots;
  for (auto& [partition, update] : staged.updates) {
    for (PartitionStore::EncodedEntries::Entry snapshot : update.encoded_snapshots) {
      outgoing.key = snapshot.key;
      outgoing.value = snapshot.value;
      outgoing.partition = partition;
      absl::Status s = producer_->ProduceCopy(outgoing, track(&staged.snapshots_next));
      if (!s.ok()) return s;
    }
  }

  if (!staged.predicted) {
    if (absl::Status s = producer_->Flush(absl::Seconds(30)); !s.ok()) return s;
    if (!staged.delivery_error.ok()) return staged.delivery_error;
    EncodeResults(staged);
  }
  staged.events_flushed = absl::Now();

  // EncodeResults appended each partition's results in batch order; the same order finds them.
  std::map<int32_t, size_t> next_result;
  outgoing.topic = topics_.results;
  for (const log::Record* record : staged.result_records) {
    PartitionStore::EncodedEntries::Entry result =
        staged.updates[record->partition].encoded_results[next_result[record->partition]++];
    absl::string_view bytes = PartitionStore::ResultBytes(result.value);
    outgoing.key = record->key;
    outgoing.value = bytes;
    outgoing.partition = record->partition;
    absl::Status s = producer_->ProduceCopy(outgoing, track(&staged.results_next));
    if (!s.ok()) return s;
  }

  // Every record's delivery, before anything commits: a result with a wrong position must never
  // become visible, and the next batch predicts its event offsets from these.
  if (absl::Status s = producer_->Flush(absl::Seconds(30)); !s.ok()) return s;
  if (!staged.delivery_error.ok()) return staged.delivery_error;
  if (staged.prediction_missed) {
    return absl::AbortedError("event offsets differed from their prediction");
  }
  return absl::OkStatus();
}

absl::Status ProcessorImpl::ApplyCommitted(StagedBatch& staged, bool prune) {
  // The transaction is durable in the log; now the local stores and the cache may follow. The
  // stores are written on the writer's thread while the next batch is decided.
  std::map<int32_t, PartitionStore::Update>& updates = staged.updates;
  for (auto [partition, next] : staged.snapshots_next) updates[partition].snapshots_next = next;
  for (auto [partition, next] : staged.results_next) updates[partition].results_next = next;
  auto batch = std::make_shared<StoreWriter::Batch>();
  for (auto& [partition, update] : updates) {
    auto owned = owned_.find(partition);
    if (owned == owned_.end()) continue;
    batch->emplace_back(owned->second.store.get(), std::move(update));
  }
  PendingBatch pending{.seq = writer_.Enqueue(batch), .batch = batch};
  size_t results = 0;
  for (const auto& [store, update] : *batch) results += update.encoded_results.size();
  pending.results.reserve(results);
  for (const auto& [store, update] : *batch) {
    for (PartitionStore::EncodedEntries::Entry result : update.encoded_results) {
      if (result.key.empty()) continue;
      // A repeated id's results are copies of its first: any of them answers.
      pending.results.emplace(result.key, result.value);
    }
  }
  for (auto& [key, state] : staged.states) {
    cache_.Put(key, state.key_hash,
               {.version = state.version, .state = std::move(state.state), .seq = pending.seq});
  }
  pending_.push_back(std::move(pending));
  if (prune) PrunePending();
  return writer_.error();
}

void ProcessorImpl::PrunePending() {
  uint64_t applied = writer_.applied();
  while (!pending_.empty() && pending_.front().seq <= applied) {
    retired_.push_back(std::move(pending_.front().batch));
    pending_.pop_front();
  }
  // The next StartCommit takes them; batches that commit here (small ones) don't start one.
  if (retired_.size() > kMaxRetired) retired_.clear();
  for (auto it = pending_states_.begin(); it != pending_states_.end();) {
    if (it->second.seq <= applied) {
      pending_states_.erase(it++);
    } else {
      ++it;
    }
  }
}

std::optional<absl::string_view> ProcessorImpl::PendingResult(absl::string_view id,
                                                              size_t hash) const {
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
    if (auto hit = it->results.find(id, hash); hit != it->results.end()) return hit->second;
  }
  return std::nullopt;
}

void ProcessorImpl::KeepIfUnwritten(const std::string& key, StateCache::Entry& entry) {
  if (entry.seq > writer_.applied()) {
    pending_states_[key] = std::move(entry);
  } else {
    // The store has this state (or a newer one): an older entry kept here must not shadow it.
    pending_states_.erase(key);
  }
}

absl::Status ProcessorImpl::DrainWriter() {
  absl::Status s = writer_.Drain();
  PrunePending();
  return s;
}

void ProcessorImpl::Rewind(const StagedBatch& staged) {
  // Read the batch again from the last committed offsets; partitions lost meanwhile are skipped
  // (their new owner resumes from the same committed offsets).
  std::vector<log::TopicPartition> assigned = consumer_->Assignment();
  for (auto [partition, first] : staged.first_command_offsets) {
    log::TopicPartition tp{topics_.commands, partition};
    if (std::find(assigned.begin(), assigned.end(), tp) == assigned.end()) continue;
    (void)consumer_->Seek({tp, first});
  }
}

absl::Status ProcessorImpl::ProcessBatch(std::vector<log::Record> records) {
  // Two batches overlap: this one is decided and serialized (CPU) while the previous one commits
  // on the committer's thread (round trips), then waits for that commit before its own records
  // go out. It reads the previous batch's results and states, and is dropped with it should that
  // commit fail. One transaction is open at a time, so the transactional contract is unchanged.
  BatchSlot& slot = slots_[next_slot_];
  next_slot_ = 1 - next_slot_;
  // The slot's last batch committed (awaited while the other slot's was decided): its records go
  // back to the consumer, which refills them in a later poll (their strings keep their capacity).
  // The slot has room for max_batch records, so a top-up appends without moving the records,
  // which results point at.
  consumer_->Recycle(std::exchange(slot.records, std::move(records)));
  slot.records.reserve(options_.max_batch);
  slot.Reset();
  StagedBatch& staged = slot.staged;
  staged.started = absl::Now();

  absl::Status status = DecideFrom(slot, 0);
  const bool full = slot.records.size() >= options_.max_batch;
  if (status.ok() && full && !GoesOutOnCommitter(slot)) Prepare(slot);
  staged.decided = absl::Now();

  if (absl::Status previous = AwaitCommit(); !previous.ok()) {
    return Recover(previous, {committing_, &slot}, /*transaction_open=*/true);
  }
  staged.previous_committed = absl::Now();
  if (!status.ok()) return Recover(status, {&slot}, /*transaction_open=*/false);

  if (!full) {
    // Commands that arrived while the previous batch committed join this one instead of waiting
    // a whole transaction for the next (at low rates a batch is polled long before it can go).
    uint64_t revocations = revocations_;
    size_t size = slot.records.size();
    absl::StatusOr<std::vector<log::Record>> more =
        consumer_->Poll(options_.max_batch - size, absl::ZeroDuration());
    if (revocations_ != revocations) {
      // Partitions went while polling: what was decided may belong to another owner now.
      // Nothing was produced; the partitions kept read these commands again.
      LogInfo(kComponent, "batch dropped: partitions were revoked while it waited",
              {{"type", definition_.type()}});
      cache_.Clear();
      Rewind(staged);
      return callback_error_;
    }
    if (more.ok() && !more->empty()) {
      for (log::Record& record : *more) slot.records.push_back(std::move(record));
      status = DecideFrom(slot, size);
    } else if (!more.ok() && log::ClassifyError(more.status()) != ErrorClass::kRetriable) {
      status = more.status();
    }
    if (!status.ok()) return Recover(status, {&slot}, /*transaction_open=*/false);
    if (!GoesOutOnCommitter(slot)) Prepare(slot);
  }

  if (exactly_once()) {
    status = producer_->BeginTransaction();
    if (!status.ok()) return Recover(status, {&slot}, /*transaction_open=*/false);
    // The offsets go first, before any record: right after a commit the coordinator answers
    // CONCURRENT_TRANSACTIONS until the previous transaction's markers are written, and
    // librdkafka retries AddOffsetsToTxn after retry.backoff.ms but AddPartitionsToTxn (sent by
    // the first produce) after a fixed 20 ms. Once AddOffsets went through, AddPartitions does
    // at once. Measured under load: the 20 ms retry was the largest term of a batch.
    status = producer_->SendOffsetsToTransaction(CommandOffsets(staged), *consumer_);
  }
  staged.offsets_sent = absl::Now();
  if (!status.ok()) return Recover(status, {&slot}, /*transaction_open=*/exactly_once());

  if (GoesOutOnCommitter(slot)) {
    // It is serialized, goes out and commits on the committer's thread while the next batch is
    // polled and decided. Prepare and Publish then only read what Decide may read too (results,
    // states): the predicted positions are checked, not written, and the offsets track is
    // learned here, in Committed. At least once nothing is predicted, and Decide waits for this
    // batch before it copies one of its results (committing_unsettled_).
    StartCommit(slot, /*publish=*/true);
    return absl::OkStatus();
  }
  status = Publish(staged);
  staged.published = absl::Now();
  if (!status.ok()) return Recover(status, {&slot}, /*transaction_open=*/exactly_once());

  if (Overlaps(slot)) {  // exactly once, not predicted: only the commit overlaps
    StartCommit(slot, /*publish=*/false);
    return absl::OkStatus();
  }
  // A small batch commits here: deciding the next one meanwhile would save little, and the
  // hand-over costs two thread wake-ups, which on a busy machine added ~5 ms to every command's
  // latency at 2,000 commands/s (batches of ~30).
  status = Commit(staged);
  if (!status.ok()) return Recover(status, {&slot}, /*transaction_open=*/exactly_once());
  return Committed(staged);
}

void ProcessorImpl::StartCommit(BatchSlot& slot, bool publish) {
  committing_ = &slot;
  committing_unsettled_ = publish && !slot.staged.predicted;
  BatchSlot& other = &slot == &slots_[0] ? slots_[1] : slots_[0];
  committer_.Enqueue([this, &slot, &other, publish, retired = std::move(retired_)]() mutable {
    // The memory of what went before (written by now, cold), freed here rather than on the
    // processing thread: the other slot's last batch, and the store batches the writer wrote
    // (their strings were allocated on this thread, by Prepare, when the batch went out here).
    other.ReleaseCommitted();
    retired.clear();
    StagedBatch& staged = slot.staged;
    if (publish) {
      Prepare(slot);
      absl::Status published = Publish(staged);
      staged.published = absl::Now();
      if (!published.ok()) return published;
    }
    return Commit(staged);
  });
}

absl::Status ProcessorImpl::Commit(StagedBatch& staged) {
  absl::Status s;
  if (exactly_once()) {
    s = producer_->CommitTransaction();
    for (int retry = 0; log::ClassifyError(s) == ErrorClass::kRetriable && retry < 3; ++retry) {
      s = producer_->CommitTransaction();
    }
  } else {
    // The records are delivered; the offsets follow. On the committer's thread this runs while
    // the owner polls the consumer (see Consumer::CommitOffsets).
    s = consumer_->CommitOffsets(CommandOffsets(staged));
  }
  staged.committed = absl::Now();
  return s;
}

absl::Status ProcessorImpl::AwaitCommit(bool prune) {
  if (committing_ == nullptr) return absl::OkStatus();
  if (commit_error_.ok()) commit_error_ = committer_.DrainAndTakeError();
  if (!commit_error_.ok()) return commit_error_;
  BatchSlot* done = std::exchange(committing_, nullptr);
  committing_unsettled_ = false;
  absl::Status s = Committed(done->staged, prune);
  if (s.ok()) done->MarkCommitted();
  return s;
}

void ProcessorImpl::SettleCommit() {
  absl::Status s = AwaitCommit();
  if (!s.ok() && committing_ != nullptr) s = Recover(s, {committing_}, /*transaction_open=*/true);
  if (!s.ok() && callback_error_.ok()) callback_error_ = s;
}

absl::Status ProcessorImpl::Committed(StagedBatch& staged, bool prune) {
  auto ms = [](absl::Time from, absl::Time to) {
    return absl::StrCat(absl::ToDoubleMilliseconds(to - from));
  };
  LogDebug(kComponent, "batch committed",
           {{"commands", absl::StrCat(staged.results.size())},
            {"offsets_predicted", staged.predicted ? "true" : "false"},
            {"decide_ms", ms(staged.started, staged.decided)},
            {"wait_previous_ms", ms(staged.decided, staged.previous_committed)},
            {"send_offsets_ms", ms(staged.previous_committed, staged.offsets_sent)},
            {"flush_events_ms", ms(staged.offsets_sent, staged.events_flushed)},
            {"publish_ms", ms(staged.offsets_sent, staged.published)},
            {"commit_ms", ms(staged.published, staged.committed)}});
  transactions_.fetch_add(1);
  committed_.fetch_add(static_cast<int64_t>(staged.results.size()));
  // The next batches predict their event offsets from these (see PredictEventOffset).
  for (auto [partition, offsets] : staged.event_offsets) {
    EventOffsetTrack& track = event_tracks_[partition];
    if (track.last >= 0) learned_gap_ = track.gap = offsets.first - track.last - 1;
    track.last = offsets.second;
  }
  return ApplyCommitted(staged, prune);
}

absl::Status ProcessorImpl::Recover(absl::Status status, std::vector<BatchSlot*> slots,
                                    bool transaction_open) {
  committing_ = nullptr;
  committing_unsettled_ = false;
  commit_error_ = absl::OkStatus();
  ErrorClass error = log::ClassifyError(status);
  if (error == ErrorClass::kFatal || error == ErrorClass::kInvalid) {
    // The processor stops on this error. Close the producer while the batches still live:
    // closing purges the records in flight, and their delivery callbacks point into them.
    (void)producer_->Close();
    return status;
  }
  // Abortable or retriable: nothing of these batches became visible; do them again.
  aborted_.fetch_add(1);
  LogWarning(kComponent, "transaction aborted, reprocessing the batch",
             {{"type", definition_.type()}, {"error", status.ToString()}});
  if (exactly_once() && transaction_open) {
    absl::Status aborted = producer_->AbortTransaction();
    if (log::ClassifyError(aborted) == ErrorClass::kFatal) return aborted;
  }
  cache_.Clear();
  event_tracks_.clear();  // an abort marker moved the offsets; learn them again
  learned_gap_ = -1;
  // Newest first: where both batches hold a partition, the older one's first offset wins.
  for (auto it = slots.rbegin(); it != slots.rend(); ++it) Rewind((*it)->staged);
  return absl::OkStatus();
}

// ProcessorOptions::workers > 1: one ProcessorImpl per worker, each a group member of its own
// on its own thread, so the group protocol splits the partitions between them and every
// transaction keeps the single-worker contract. Run's caller runs worker 0.
class WorkerGroup final : public Processor {
 public:
  explicit WorkerGroup(std::vector<std::unique_ptr<ProcessorImpl>> workers)
      : workers_(std::move(workers)) {}

  absl::Status Run() override {
    std::vector<absl::Status> results(workers_.size());
    std::vector<std::thread> threads;
    auto run = [this, &results](size_t i) {
      // Worker 0 runs on the caller's thread, which keeps its name.
      if (i > 0) NameThisThread(absl::StrCat("lf-worker-", i));
      results[i] = workers_[i]->Run();
      // One worker stopping (an error, or fenced) stops the instance, as a single worker would.
      Stop();
    };
    for (size_t i = 1; i < workers_.size(); ++i) threads.emplace_back(run, i);
    run(0);
    for (std::thread& t : threads) t.join();
    for (const absl::Status& s : results) {
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  void Stop() override {
    for (auto& w : workers_) w->Stop();
  }
  bool ready() const override {
    // A worker may own no partition (more workers than partitions): one ready worker suffices.
    for (const auto& w : workers_) {
      if (w->ready()) return true;
    }
    return false;
  }
  ProcessorStats stats() const override {
    ProcessorStats total;
    for (const auto& w : workers_) {
      ProcessorStats s = w->stats();
      total.commands += s.commands;
      total.committed += s.committed;
      total.accepted += s.accepted;
      total.rejected += s.rejected;
      total.conflicts += s.conflicts;
      total.failed += s.failed;
      total.duplicates += s.duplicates;
      total.transactions += s.transactions;
      total.aborted_transactions += s.aborted_transactions;
      total.restored_snapshots += s.restored_snapshots;
    }
    return total;
  }

 private:
  std::vector<std::unique_ptr<ProcessorImpl>> workers_;
};

}  // namespace
}  // namespace internal::processor

absl::StatusOr<std::unique_ptr<Processor>> Processor::Create(std::shared_ptr<Transport> transport,
                                                             AggregateDefinition definition,
                                                             ProcessorOptions options) {
  if (transport == nullptr) return absl::InvalidArgumentError("Processor: transport is null");
  if (absl::Status s = definition.Validate(); !s.ok()) return s;
  if (options.max_batch == 0) return absl::InvalidArgumentError("ProcessorOptions.max_batch is 0");
  const TransportOptions& t = transport->options();
  internal::AggregateTopics topics = internal::TopicsFor(t.topic_prefix, definition.type());
  absl::StatusOr<int32_t> partitions =
      internal::EnsureTopics(transport->log_internal().admin(), topics, t.partitions,
                             {.results_retention = options.dedup_window});
  if (!partitions.ok()) return partitions.status();
  if (options.group.empty()) {
    options.group = absl::StrCat(t.topic_prefix, definition.type(), ".processor");
  }
  bool static_member = !options.instance_id.empty();
  if (options.instance_id.empty()) options.instance_id = internal::processor::DefaultInstanceId();
  if (options.workers <= 1) {
    return std::make_unique<internal::processor::ProcessorImpl>(
        std::move(transport), std::move(definition), std::move(options), std::move(topics),
        static_member);
  }
  std::vector<std::unique_ptr<internal::processor::ProcessorImpl>> workers;
  for (size_t i = 0; i < options.workers; ++i) {
    ProcessorOptions worker = options;
    worker.instance_id = absl::StrCat(options.instance_id, "-w", i);
    worker.cache_size = options.cache_size / options.workers;
    worker.workers = 1;
    workers.push_back(std::make_unique<internal::processor::ProcessorImpl>(
        transport, definition, std::move(worker), topics, static_member));
  }
  return std::make_unique<internal::processor::WorkerGroup>(std::move(workers));
}

}  // namespace leftfold
