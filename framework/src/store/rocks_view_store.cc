#include "store/rocks_view_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/background_writer.h"
#include "projection/row_codec.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "store/scan_plan.h"

namespace leftfold::internal::store {
namespace {

constexpr char kRowPrefix = 'r';
constexpr char kCheckpointPrefix = 'c';
// In a shadow dir: written (and fsynced) once the shadow holds the whole view, before the renames.
constexpr char kCompleteMarker[] = "LEFTFOLD_REBUILD_COMPLETE";

std::string OldDir(const std::string& dir) { return dir + ".old"; }

// Makes renames inside `dir`'s parent durable.
void SyncParent(const std::string& dir) {
  std::filesystem::path parent = std::filesystem::path(dir).parent_path();
  if (parent.empty()) parent = ".";
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

absl::Status Rename(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::rename(from, to, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("view store: rename ", from, " -> ", to, ": ", ec.message()));
  }
  SyncParent(to);
  return absl::OkStatus();
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// Finishes a swap a crash interrupted, so that `dir` holds exactly one consistent view: a complete
// shadow replaces the live dir; the old dir of a finished swap is deleted.
absl::Status RecoverSwap(const std::string& dir) {
  const std::string shadow = RocksViewStore::ShadowDir(dir);
  const std::string old = OldDir(dir);
  std::error_code ec;
  // With the live dir in place, an old dir is the leftover of a finished swap.
  if (Exists(old) && Exists(dir)) std::filesystem::remove_all(old, ec);
  if (Exists(shadow + "/" + kCompleteMarker)) {
    if (Exists(dir)) {
      if (absl::Status s = Rename(dir, old); !s.ok()) return s;
    }
    if (absl::Status s = Rename(shadow, dir); !s.ok()) return s;
    std::filesystem::remove_all(old, ec);
  }
  // The marker moved with the shadow into place; it means nothing there.
  std::filesystem::remove(std::filesystem::path(dir) / kCompleteMarker, ec);
  return absl::OkStatus();
}

std::string RowKey(absl::string_view key) {
  std::string k;
  k.reserve(key.size() + 1);
  k.push_back(kRowPrefix);
  k.append(key.data(), key.size());
  return k;
}
std::string CheckpointKey(const log::TopicPartition& tp) {
  return absl::StrCat(std::string(1, kCheckpointPrefix), tp.topic, "/", tp.partition);
}

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("view store ", what, ": ", s.ToString()));
}

absl::Status ReadOnly(const std::string& name) {
  return absl::FailedPreconditionError(
      absl::StrCat("view ", name, " is read-only here: only a projector's handlers write it"));
}

absl::StatusOr<ViewRow> ToRow(const std::string& view, absl::string_view key,
                              absl::string_view value) {
  ViewRow row;
  row.key = std::string(key);
  if (!row.value.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(absl::StrCat("view ", view, " row '", key, "' is corrupt"));
  }
  return row;
}

// A View over the committed rows, for queries.
class RocksView : public View {
 public:
  // `mu`: held shared around every read of `*db`, which SwapIn replaces under it.
  RocksView(const std::string& name, absl::Mutex* mu, rocksdb::DB* const* db)
      : name_(name), mu_(mu), db_(db) {}

  const std::string& name() const override { return name_; }

 protected:
  absl::StatusOr<std::optional<std::string>> GetRaw(absl::string_view key) const override {
    absl::ReaderMutexLock lock(mu_);
    rocksdb::DB* db = *db_;
    if (db == nullptr) return Closed();
    std::string value;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), RowKey(key), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, "get");
    return std::optional<std::string>(std::move(value));
  }
  absl::Status PutRaw(absl::string_view, std::string) override { return ReadOnly(name_); }
  absl::Status DeleteRaw(absl::string_view) override { return ReadOnly(name_); }
  absl::StatusOr<ScanPage> ScanRaw(const ScanRange& range) const override {
    absl::ReaderMutexLock lock(mu_);
    rocksdb::DB* db = *db_;
    if (db == nullptr) return Closed();
    ScanPlan plan(range);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    ScanPage page;
    for (it->Seek(RowKey(plan.lower())); it->Valid(); it->Next()) {
      rocksdb::Slice k = it->key();
      if (k.empty() || k[0] != kRowPrefix) break;
      absl::string_view key(k.data() + 1, k.size() - 1);
      if (!plan.InRange(key)) break;
      if (plan.Full()) {
        page.next_page_token = std::string(key);
        break;
      }
      plan.Take();
      absl::StatusOr<ViewRow> row =
          ToRow(name_, key, absl::string_view(it->value().data(), it->value().size()));
      if (!row.ok()) return row.status();
      page.rows.push_back(*std::move(row));
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scan");
    return page;
  }

 private:
  absl::Status Closed() const {
    return absl::UnavailableError(absl::StrCat("view ", name_, " is closed (a swap failed)"));
  }
  const std::string& name_;
  absl::Mutex* mu_;
  rocksdb::DB* const* db_;
};

}  // namespace

// Bound on the cache: past it the cache starts over (simpler than an LRU, and a projector's hot
// rows come back within a batch or two).
constexpr size_t kMaxCachedRows = 100000;

// The cache's or the batch's idea of one row: absent (deleted / no such row), serialized, or a
// message.
struct CachedRow {
  enum class Kind : uint8_t { kAbsent, kBytes, kMessage };
  Kind kind = Kind::kAbsent;
  std::string bytes;                                   // kBytes: the serialized Any
  std::unique_ptr<google::protobuf::Message> message;  // kMessage

  void SetAbsent() {
    kind = Kind::kAbsent;
    bytes.clear();
    message.reset();
  }
  void SetBytes(std::string b) {
    kind = Kind::kBytes;
    bytes = std::move(b);
    message.reset();
  }
  void SetMessage(const google::protobuf::Message& m) {
    if (kind != Kind::kMessage || !projection::SameMessageType(*message, m)) {
      message.reset(m.New());
      kind = Kind::kMessage;
      bytes.clear();
    }
    projection::CopyMessage(m, message.get());
  }
  // The stored bytes (serialized now for a message; `scratch` holds them then).
  std::optional<absl::string_view> Bytes(std::string* scratch) const {
    switch (kind) {
      case Kind::kAbsent:
        return std::nullopt;
      case Kind::kBytes:
        return absl::string_view(bytes);
      case Kind::kMessage:
        projection::EncodeRow(*message, scratch);
        return absl::string_view(*scratch);
    }
    return std::nullopt;
  }
};

// Row key (without the "r" prefix) -> committed row. This store's batches are the database's only
// writer, so an entry cannot go stale; SwapIn empties it.
class RowCache : public absl::flat_hash_map<std::string, CachedRow> {};

// The writer thread of a store (see rocks_view_store.h, "Commit pipelining"). Thread-safe.
class CommitWriter {
 public:
  CommitWriter(absl::Mutex* db_mu, rocksdb::DB* const* db, Watermarks* watermarks)
      : db_mu_(db_mu), db_(db), watermarks_(watermarks) {}

  // Waits until no write is in flight; the failure of the last one, if not taken yet.
  absl::Status Wait() { return writer_.Drain(); }
  // Like Wait, and forgets the failure (the caller reports it).
  absl::Status Take() { return writer_.DrainAndTakeError(); }
  // After Take() returned OK: writes `batch` in the background, then advances the watermarks.
  void Submit(rocksdb::WriteBatch batch, Checkpoints checkpoints) {
    auto job = std::make_shared<std::pair<rocksdb::WriteBatch, Checkpoints>>(
        std::move(batch), std::move(checkpoints));
    writer_.Enqueue([this, job] { return Write(job->first, job->second); });
  }

 private:
  absl::Status Write(rocksdb::WriteBatch& batch, const Checkpoints& checkpoints) {
    {
      absl::ReaderMutexLock lock(db_mu_);  // SwapIn replaces the database under it
      rocksdb::DB* db = *db_;
      if (db == nullptr) return absl::UnavailableError("view store closed");
      rocksdb::WriteOptions options;
      // WAL on, no fsync per batch: a process crash loses nothing (the WAL is in the OS), a
      // machine crash may lose the last batches, but rows and checkpoint go back together (one
      // atomic batch), so the projector re-applies exactly those events from the log, the
      // source of truth. Never an event twice, never a view ahead of its checkpoint.
      options.sync = false;
      rocksdb::Status s = db->Write(options, &batch);
      if (!s.ok()) return FromRocks(s, "commit");
    }
    watermarks_->Advance(checkpoints);
    return absl::OkStatus();
  }

  absl::Mutex* db_mu_;
  rocksdb::DB* const* db_;
  Watermarks* watermarks_;
  // Last: its destructor runs the write in flight.
  BackgroundWriter writer_{/*max_pending=*/1, "lf-view-write"};
};

namespace {

using RowMap = absl::flat_hash_map<std::string, CachedRow>;

// Why a batch keeps its writes as the LAST value of each key, over a cache of committed rows,
// and not in a WriteBatchWithIndex: a projector rewrites the same rows many times per batch (a
// counter, an account hit by many events); the indexed batch kept every version, searched them
// on each read and wrote them all into the memtable at commit. Here a read of a row the batch
// wrote is one hash lookup and the commit writes each key once.
//
// Rows are kept as messages where they can be: a handler's Put copies its message in (no
// serialization), a Get of the same type copies it out (no parse), and the commit serializes
// each row once. A row first read from the database is parsed once and kept parsed.
class BatchView : public View {
 public:
  // `writer`: its write in flight is not in `db` yet, only in `cache`.
  BatchView(const std::string& name, rocksdb::DB* db, RowCache* cache, CommitWriter* writer)
      : name_(name), db_(db), cache_(cache), writer_(writer) {}

  const std::string& name() const override { return name_; }
  // Row key (without the prefix) -> last value of this batch.
  const RowMap& writes() const { return writes_; }
  // After the commit: the batch's writes are committed rows now.
  void MoveWritesToCache() {
    if (cache_->size() + writes_.size() > kMaxCachedRows) cache_->clear();
    for (auto& [k, v] : writes_) (*cache_)[k] = std::move(v);
    writes_.clear();
  }

 protected:
  // The row of `key` as this batch sees it: its own write, else the committed-row cache, else
  // loaded from RocksDB (into the cache).
  absl::StatusOr<CachedRow*> Lookup(absl::string_view key) const {
    if (auto it = writes_.find(key); it != writes_.end()) return &it->second;
    if (auto c = cache_->find(key); c != cache_->end()) return &c->second;
    return Load(key);
  }

  std::optional<absl::Status> GetMessage(absl::string_view key,
                                         google::protobuf::Message* row) const override {
    absl::StatusOr<CachedRow*> found = Lookup(key);
    if (!found.ok()) return found.status();
    CachedRow* r = *found;
    switch (r->kind) {
      case CachedRow::Kind::kAbsent:
        return projection::RowNotFound(name_, key);
      case CachedRow::Kind::kMessage:
        if (projection::SameMessageType(*r->message, *row)) {
          projection::CopyMessage(*r->message, row);
          return absl::OkStatus();
        }
        // Another C++ type (a DynamicMessage of the same name, or the wrong type): by bytes.
        projection::EncodeRow(*r->message, &scratch_);
        if (!projection::DecodeRow(scratch_, row)) {
          return projection::RowTypeMismatch(name_, key, *row);
        }
        return absl::OkStatus();
      case CachedRow::Kind::kBytes:
        if (!projection::DecodeRow(r->bytes, row)) {
          return projection::RowTypeMismatch(name_, key, *row);
        }
        r->SetMessage(*row);  // parsed once; later reads copy the message
        return absl::OkStatus();
    }
    return std::nullopt;
  }
  std::optional<absl::Status> PutMessage(absl::string_view key,
                                         const google::protobuf::Message& row) override {
    Slot(key).SetMessage(row);
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<std::string>> GetRaw(absl::string_view key) const override {
    absl::StatusOr<CachedRow*> found = Lookup(key);
    if (!found.ok()) return found.status();
    const CachedRow* r = *found;
    std::optional<absl::string_view> bytes = r->Bytes(&scratch_);
    if (!bytes.has_value()) return std::optional<std::string>();
    return std::optional<std::string>(std::string(*bytes));
  }
  absl::Status PutRaw(absl::string_view key, std::string any_bytes) override {
    Slot(key).SetBytes(std::move(any_bytes));
    return absl::OkStatus();
  }
  absl::Status DeleteRaw(absl::string_view key) override {
    Slot(key).SetAbsent();
    return absl::OkStatus();
  }
  // Merges the batch's writes (sorted here; scans in handlers are rare) with the committed rows.
  absl::StatusOr<ScanPage> ScanRaw(const ScanRange& range) const override {
    // The scan reads RocksDB, which must hold the previous batch first. (Its failure, if any,
    // fails this batch's commit.)
    writer_->Wait().IgnoreError();
    ScanPlan plan(range);
    const std::string lower = RowKey(plan.lower());
    std::vector<std::pair<absl::string_view, const CachedRow*>> mine;
    for (const auto& [k, v] : writes_) {
      if (absl::string_view(k) >= plan.lower()) mine.push_back({k, &v});
    }
    std::sort(mine.begin(), mine.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    it->Seek(lower);
    size_t m = 0;
    ScanPage page;
    std::string scratch;
    for (;;) {
      const bool db_ok = it->Valid() && !it->key().empty() && it->key()[0] == kRowPrefix;
      const bool mine_ok = m < mine.size();
      if (!db_ok && !mine_ok) break;
      std::string key;  // without the prefix; copied, the iterator moves on below
      std::optional<std::string> value;
      int cmp = !db_ok     ? 1
                : !mine_ok ? -1
                           : absl::string_view(it->key().data() + 1, it->key().size() - 1)
                                 .compare(mine[m].first);
      if (cmp < 0) {
        key.assign(it->key().data() + 1, it->key().size() - 1);
        value = it->value().ToString();
        it->Next();
      } else {
        key = std::string(mine[m].first);
        if (std::optional<absl::string_view> b = mine[m].second->Bytes(&scratch)) {
          value = std::string(*b);
        }
        ++m;
        if (cmp == 0) it->Next();  // the batch's write shadows the committed row
      }
      if (!value.has_value()) continue;  // deleted in this batch
      if (!plan.InRange(key)) break;
      if (plan.Full()) {
        page.next_page_token = key;
        break;
      }
      plan.Take();
      absl::StatusOr<ViewRow> row = ToRow(name_, key, *value);
      if (!row.ok()) return row.status();
      page.rows.push_back(*std::move(row));
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scan");
    return page;
  }

 private:
  // Reads a row the batch and the cache do not hold from the database into the cache (committed,
  // so cacheable whatever this batch becomes).
  absl::StatusOr<CachedRow*> Load(absl::string_view key) const {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), RowKey(key), &value);
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "get");
    if (cache_->size() >= kMaxCachedRows) {
      // The cache holds the rows of the write in flight, which RocksDB may not have yet.
      writer_->Wait().IgnoreError();
      cache_->clear();
    }
    CachedRow& r = (*cache_)[key];
    if (s.ok()) {
      r.SetBytes(std::move(value));
    } else {
      r.SetAbsent();
    }
    return &r;
  }
  CachedRow& Slot(absl::string_view key) {
    auto it = writes_.find(key);
    if (it == writes_.end()) it = writes_.try_emplace(std::string(key)).first;
    return it->second;
  }

  const std::string& name_;
  rocksdb::DB* db_;
  RowCache* cache_;
  CommitWriter* writer_;
  mutable RowMap writes_;  // mutable: a read parses a row once and keeps the message
  mutable std::string scratch_;
};

class RocksBatch : public Batch {
 public:
  RocksBatch(const std::string& name, rocksdb::DB* db, RowCache* cache, CommitWriter* writer)
      : cache_(cache), writer_(writer), view_(name, db, cache, writer) {}

  View* view() override { return &view_; }
  SqlView* sql() override { return nullptr; }

  absl::Status Commit(const Checkpoints& checkpoints) override {
    // Rows and checkpoints in ONE WriteBatch: RocksDB applies it whole or not at all, so the
    // checkpoint never moves without the view change, nor the view without the checkpoint.
    // In key order: the memtable's skip list inserts a run of ascending keys next to each other
    // (it keeps the last insert's position) instead of searching from the top for each.
    std::vector<const RowMap::value_type*> writes;
    writes.reserve(view_.writes().size());
    for (const auto& entry : view_.writes()) writes.push_back(&entry);
    std::sort(writes.begin(), writes.end(),
              [](const auto* a, const auto* b) { return a->first < b->first; });
    rocksdb::WriteBatch batch;
    std::string key(1, kRowPrefix);
    std::string scratch;
    for (const auto* entry : writes) {
      key.resize(1);
      key.append(entry->first);
      std::optional<absl::string_view> value = entry->second.Bytes(&scratch);
      rocksdb::Status s = value.has_value()
                              ? batch.Put(key, rocksdb::Slice(value->data(), value->size()))
                              : batch.Delete(key);
      if (!s.ok()) return FromRocks(s, "write");
    }
    for (const auto& [tp, offset] : checkpoints) {
      rocksdb::Status s = batch.Put(CheckpointKey(tp), absl::StrCat(offset));
      if (!s.ok()) return FromRocks(s, "checkpoint");
    }
    // The previous batch's write must be in before this one goes (and before its rows, which
    // this batch may have read from the cache, count as committed).
    if (absl::Status previous = writer_->Take(); !previous.ok()) {
      cache_->clear();  // holds rows of the failed batch
      return previous;
    }
    view_.MoveWritesToCache();
    writer_->Submit(std::move(batch), checkpoints);
    return absl::OkStatus();
  }

 private:
  RowCache* cache_;
  CommitWriter* writer_;
  BatchView view_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<RocksViewStore>> RocksViewStore::Open(const std::string& dir,
                                                                     const std::string& view_name) {
  if (absl::Status s = RecoverSwap(dir); !s.ok()) return s;
  return OpenAt(dir, view_name);
}

absl::StatusOr<std::unique_ptr<RocksViewStore>> RocksViewStore::OpenShadow(
    const std::string& dir, const std::string& view_name) {
  if (absl::Status s = RecoverSwap(dir); !s.ok()) return s;
  return OpenAt(ShadowDir(dir), view_name);
}

bool RocksViewStore::HasShadow(const std::string& dir) { return Exists(ShadowDir(dir)); }

absl::StatusOr<std::unique_ptr<RocksViewStore>> RocksViewStore::OpenAt(
    const std::string& dir, const std::string& view_name) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);  // RocksDB creates the last level only
  if (ec) {
    return absl::InternalError(absl::StrCat("view store: cannot create ", dir, ": ", ec.message()));
  }
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return absl::FailedPreconditionError(
          absl::StrCat("view store ", dir, " is open in another process: ", s.ToString()));
    }
    return FromRocks(s, absl::StrCat("open ", dir));
  }
  std::unique_ptr<RocksViewStore> store(new RocksViewStore());
  store->name_ = view_name;
  store->row_cache_ = std::make_unique<RowCache>();
  store->dir_ = dir;
  {
    absl::MutexLock lock(&store->db_mu_);
    store->db_ = raw;
  }
  store->committed_ = std::make_unique<RocksView>(store->name_, &store->db_mu_, &store->db_);
  store->writer_ = std::make_unique<CommitWriter>(&store->db_mu_, &store->db_, &store->watermarks_);
  absl::StatusOr<Checkpoints> checkpoints = store->LoadCheckpoints();
  if (!checkpoints.ok()) return checkpoints.status();
  store->watermarks_.Advance(*checkpoints);
  return store;
}

RocksViewStore::~RocksViewStore() {
  writer_.reset();  // writes the batch in flight (without db_mu_: the writer takes it)
  committed_.reset();
  absl::MutexLock lock(&db_mu_);
  CloseDb();
}

void RocksViewStore::CloseDb() {
  if (db_ == nullptr) return;
  db_->Close().PermitUncheckedError();
  delete db_;
  db_ = nullptr;
}

absl::Status RocksViewStore::SwapIn(std::unique_ptr<RocksViewStore> shadow) {
  if (shadow == nullptr || shadow->dir_ != ShadowDir(dir_)) {
    return absl::InvalidArgumentError(
        absl::StrCat("view store ", name_, ": SwapIn needs the shadow at ", ShadowDir(dir_)));
  }
  // The shadow's last batch must be in (a failed one shows in the shadow's checkpoints, which
  // the rebuilder compares with the live ones before it swaps).
  shadow->writer_->Wait().IgnoreError();
  {
    // Flushes the shadow's memtable so the renamed dir reopens without replaying a WAL.
    absl::MutexLock lock(&shadow->db_mu_);
    shadow->CloseDb();
  }
  shadow.reset();
  const std::string shadow_dir = ShadowDir(dir_);
  {
    std::ofstream marker(shadow_dir + "/" + kCompleteMarker);
    marker << "complete\n";
    if (!marker.flush()) {
      return absl::InternalError(absl::StrCat("view store ", name_, ": cannot mark ", shadow_dir));
    }
  }
  {
    int fd = ::open((shadow_dir + "/" + kCompleteMarker).c_str(), O_RDONLY);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
    fd = ::open(shadow_dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }
  // From here on a crash is finished by RecoverSwap at the next open.
  writer_->Wait().IgnoreError();  // none in flight (the runner is paused and flushed)
  absl::MutexLock lock(&db_mu_);
  row_cache_->clear();  // rows of the database being replaced
  CloseDb();
  if (absl::Status s = RecoverSwap(dir_); !s.ok()) return s;
  rocksdb::Options options;
  options.create_if_missing = false;
  rocksdb::DB* raw = nullptr;
  if (rocksdb::Status s = rocksdb::DB::Open(options, dir_, &raw); !s.ok()) {
    return FromRocks(s, absl::StrCat("reopen ", dir_, " after the swap"));
  }
  db_ = raw;
  return absl::OkStatus();
}

absl::StatusOr<Checkpoints> RocksViewStore::LoadCheckpoints() {
  // The batch in flight first: its checkpoints are the ones to resume from. Its failure stays
  // for Commit/Flush to report (the runtime must learn that its later batches are void).
  writer_->Wait().IgnoreError();
  Checkpoints out;
  absl::ReaderMutexLock lock(&db_mu_);
  if (db_ == nullptr) return absl::UnavailableError(absl::StrCat("view store ", name_, " closed"));
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix(1, kCheckpointPrefix);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    absl::string_view k(it->key().data() + 1, it->key().size() - 1);
    size_t slash = k.rfind('/');
    int32_t partition = 0;
    int64_t offset = 0;
    if (slash == absl::string_view::npos || !absl::SimpleAtoi(k.substr(slash + 1), &partition) ||
        !absl::SimpleAtoi(absl::string_view(it->value().data(), it->value().size()), &offset)) {
      return absl::DataLossError(absl::StrCat("view store ", name_, ": bad checkpoint ", k));
    }
    out[{std::string(k.substr(0, slash)), partition}] = offset;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "load checkpoints");
  return out;
}

absl::StatusOr<std::unique_ptr<Batch>> RocksViewStore::Begin() {
  // The runtime thread is the only writer and SwapIn runs while it is paused, so the batch may
  // keep the pointer without the lock.
  absl::ReaderMutexLock lock(&db_mu_);
  if (db_ == nullptr) return absl::UnavailableError(absl::StrCat("view store ", name_, " closed"));
  return std::unique_ptr<Batch>(new RocksBatch(name_, db_, row_cache_.get(), writer_.get()));
}

absl::Status RocksViewStore::Flush() {
  absl::Status s = writer_->Take();
  if (!s.ok()) row_cache_->clear();  // holds rows of the failed batch
  return s;
}

}  // namespace leftfold::internal::store
