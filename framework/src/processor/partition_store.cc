#include "processor/partition_store.h"

#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace leftfold::internal::processor {
namespace {

// Key space: s/<aggregate id> → Snapshot; d/<command id> → CommandResult;
// e/<processed-at micros, 20 digits>/<command id> → "" (expiry index); m/<name> → meta.
constexpr char kSnapshotPrefix[] = "s/";
constexpr char kResultPrefix[] = "d/";
constexpr char kExpiryPrefix[] = "e/";
constexpr char kSnapshotsNextKey[] = "m/snapshots_next";
constexpr char kResultsNextKey[] = "m/results_next";
constexpr char kDefinitionVersionKey[] = "m/definition_version";

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("state store: ", what, ": ", s.ToString()));
}

std::string ExpiryKey(const v1::CommandResult& result) {
  int64_t micros = google::protobuf::util::TimeUtil::TimestampToMicroseconds(result.processed_at());
  std::string digits = absl::StrCat(std::max<int64_t>(micros, 0));
  return absl::StrCat(kExpiryPrefix, std::string(20 - std::min<size_t>(digits.size(), 20), '0'),
                      digits, "/", result.command_id());
}

}  // namespace

absl::StatusOr<std::unique_ptr<PartitionStore>> PartitionStore::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("state store: cannot create ", dir, ": ", ec.message()));
  rocksdb::Options options;
  options.create_if_missing = true;
  options.compression = rocksdb::kLZ4Compression;
  // Many partitions per process: keep each instance's memory small.
  options.write_buffer_size = 16 << 20;
  options.max_open_files = 256;
  // Most dedup lookups miss: let a bloom filter answer them, in the memtable and on disk.
  options.memtable_prefix_bloom_size_ratio = 0.05;
  options.memtable_whole_key_filtering = true;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.whole_key_filtering = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  if (absl::Status s = FromRocks(rocksdb::DB::Open(options, dir, &raw), absl::StrCat("open ", dir));
      !s.ok()) {
    return s;
  }
  std::unique_ptr<PartitionStore> store(new PartitionStore(std::unique_ptr<rocksdb::DB>(raw)));
  if (absl::Status s = store->LoadMeta(); !s.ok()) return s;
  return store;
}

PartitionStore::PartitionStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}
PartitionStore::~PartitionStore() = default;

absl::Status PartitionStore::LoadMeta() {
  for (auto [key, field] : {std::pair{kSnapshotsNextKey, &snapshots_next_},
                            std::pair{kResultsNextKey, &results_next_}}) {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &value);
    if (s.IsNotFound()) continue;
    if (absl::Status st = FromRocks(s, "read meta"); !st.ok()) return st;
    if (!absl::SimpleAtoi(value, field)) return absl::DataLossError("state store: bad meta value");
  }
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kDefinitionVersionKey, &value);
  if (s.ok() && !absl::SimpleAtoi(value, &definition_version_)) {
    return absl::DataLossError("state store: bad definition version");
  }
  return s.ok() || s.IsNotFound() ? absl::OkStatus() : FromRocks(s, "read meta");
}

absl::StatusOr<std::optional<v1::Snapshot>> PartitionStore::GetSnapshot(
    const std::string& aggregate_id) const {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), absl::StrCat(kSnapshotPrefix, aggregate_id), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (absl::Status st = FromRocks(s, "get snapshot"); !st.ok()) return st;
  v1::Snapshot snapshot;
  if (!snapshot.ParseFromString(value)) {
    return absl::DataLossError(absl::StrCat("state store: unreadable snapshot of ", aggregate_id));
  }
  return snapshot;
}

absl::StatusOr<std::optional<v1::CommandResult>> PartitionStore::GetResult(
    const std::string& command_id) const {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), absl::StrCat(kResultPrefix, command_id), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (absl::Status st = FromRocks(s, "get result"); !st.ok()) return st;
  v1::CommandResult result;
  if (!result.ParseFromString(value)) {
    return absl::DataLossError(absl::StrCat("state store: unreadable result of ", command_id));
  }
  return result;
}

absl::Status PartitionStore::Write(const Update& update) {
  rocksdb::WriteBatch batch;
  for (const v1::Snapshot& snapshot : update.snapshots) {
    if (update.replay) {
      // A changelog replay may carry an older snapshot than the one stored; never go backwards.
      absl::StatusOr<std::optional<v1::Snapshot>> current = GetSnapshot(snapshot.aggregate_id());
      if (!current.ok()) return current.status();
      if (current->has_value() && (*current)->version() > snapshot.version()) continue;
    }
    batch.Put(absl::StrCat(kSnapshotPrefix, snapshot.aggregate_id()), snapshot.SerializeAsString());
  }
  for (const v1::CommandResult& result : update.results) {
    if (result.command_id().empty()) continue;
    batch.Put(absl::StrCat(kResultPrefix, result.command_id()), result.SerializeAsString());
    batch.Put(ExpiryKey(result), "");
  }
  if (update.snapshots_next >= 0) batch.Put(kSnapshotsNextKey, absl::StrCat(update.snapshots_next));
  if (update.results_next >= 0) batch.Put(kResultsNextKey, absl::StrCat(update.results_next));
  if (update.definition_version >= 0) {
    batch.Put(kDefinitionVersionKey, absl::StrCat(update.definition_version));
  }
  // No WAL: everything here can be rebuilt from the log, the durable copy. After a crash the
  // store is an older consistent state (each batch carries its changelog offsets), and restore
  // replays the log from those offsets.
  rocksdb::WriteOptions write_options;
  write_options.disableWAL = true;
  if (absl::Status s = FromRocks(db_->Write(write_options, &batch), "write"); !s.ok()) {
    return s;
  }
  if (update.snapshots_next >= 0) snapshots_next_ = update.snapshots_next;
  if (update.results_next >= 0) results_next_ = update.results_next;
  if (update.definition_version >= 0) definition_version_ = update.definition_version;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> PartitionStore::ExpireResults(absl::Duration window) {
  int64_t cutoff = absl::ToUnixMicros(absl::Now() - window);
  std::string digits = absl::StrCat(std::max<int64_t>(cutoff, 0));
  std::string end = absl::StrCat(kExpiryPrefix, std::string(20 - digits.size(), '0'), digits);
  rocksdb::WriteBatch batch;
  int64_t expired = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(kExpiryPrefix); it->Valid() && it->key().compare(end) < 0; it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    size_t slash = key.find('/', sizeof(kExpiryPrefix) - 1);
    if (slash == absl::string_view::npos) continue;
    batch.Delete(absl::StrCat(kResultPrefix, key.substr(slash + 1)));
    batch.Delete(it->key());
    ++expired;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan expiry index");
  if (expired == 0) return 0;
  if (absl::Status s = FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "expire"); !s.ok()) {
    return s;
  }
  return expired;
}

absl::Status PartitionStore::DropSnapshots() {
  std::string begin = kSnapshotPrefix;
  std::string end = "s0";  // '0' follows '/'
  rocksdb::WriteBatch batch;
  batch.DeleteRange(db_->DefaultColumnFamily(), begin, end);
  batch.Put(kSnapshotsNextKey, "0");
  if (absl::Status s = FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "drop snapshots");
      !s.ok()) {
    return s;
  }
  snapshots_next_ = 0;
  return absl::OkStatus();
}

}  // namespace leftfold::internal::processor
