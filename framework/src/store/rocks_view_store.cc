#include "store/rocks_view_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/utilities/write_batch_with_index.h"
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

std::string RowKey(absl::string_view key) { return absl::StrCat(std::string(1, kRowPrefix), key); }
std::string CheckpointKey(const log::TopicPartition& tp) {
  return absl::StrCat(std::string(1, kCheckpointPrefix), tp.topic, "/", tp.partition);
}

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("view store ", what, ": ", s.ToString()));
}

// A View over the committed rows, or (with a batch) over the batch's pending writes on top.
class RocksView : public View {
 public:
  // `mu` (nullptr for a batch's view): held shared around every read of `*db`, which SwapIn
  // replaces under it.
  RocksView(const std::string& name, absl::Mutex* mu, rocksdb::DB* const* db,
            rocksdb::WriteBatchWithIndex* batch)
      : name_(name), mu_(mu), db_(db), batch_(batch) {}

  const std::string& name() const override { return name_; }

 protected:
  absl::StatusOr<std::optional<std::string>> GetRaw(absl::string_view key) const override {
    std::optional<absl::ReaderMutexLock> lock;
    if (mu_) lock.emplace(mu_);
    rocksdb::DB* db = *db_;
    if (db == nullptr) return Closed();
    std::string value;
    const std::string k = RowKey(key);
    rocksdb::Status s = batch_ ? batch_->GetFromBatchAndDB(db, rocksdb::ReadOptions(), k, &value)
                               : db->Get(rocksdb::ReadOptions(), k, &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, "get");
    return std::optional<std::string>(std::move(value));
  }
  absl::Status PutRaw(absl::string_view key, std::string any_bytes) override {
    if (!batch_) return ReadOnly();
    return FromRocks(batch_->Put(RowKey(key), any_bytes), "put");
  }
  absl::Status DeleteRaw(absl::string_view key) override {
    if (!batch_) return ReadOnly();
    return FromRocks(batch_->Delete(RowKey(key)), "delete");
  }
  absl::StatusOr<ScanPage> ScanRaw(const ScanRange& range) const override {
    std::optional<absl::ReaderMutexLock> lock;
    if (mu_) lock.emplace(mu_);
    rocksdb::DB* db = *db_;
    if (db == nullptr) return Closed();
    ScanPlan plan(range);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    if (batch_) it.reset(batch_->NewIteratorWithBase(it.release()));
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
      ViewRow& row = page.rows.emplace_back();
      row.key = std::string(key);
      if (!row.value.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return absl::DataLossError(absl::StrCat("view ", name_, " row '", key, "' is corrupt"));
      }
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scan");
    return page;
  }

 private:
  absl::Status ReadOnly() const {
    return absl::FailedPreconditionError(
        absl::StrCat("view ", name_, " is read-only here: only a projector's handlers write it"));
  }
  absl::Status Closed() const {
    return absl::UnavailableError(absl::StrCat("view ", name_, " is closed (a swap failed)"));
  }
  const std::string& name_;
  absl::Mutex* mu_;
  rocksdb::DB* const* db_;
  rocksdb::WriteBatchWithIndex* batch_;
};

class RocksBatch : public Batch {
 public:
  RocksBatch(const std::string& name, rocksdb::DB* db, Watermarks* watermarks)
      : db_(db),
        watermarks_(watermarks),
        batch_(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true),
        view_(name, nullptr, &db_, &batch_) {}

  View* view() override { return &view_; }
  SqlView* sql() override { return nullptr; }

  absl::Status Commit(const Checkpoints& checkpoints) override {
    for (const auto& [tp, offset] : checkpoints) {
      rocksdb::Status s = batch_.Put(CheckpointKey(tp), absl::StrCat(offset));
      if (!s.ok()) return FromRocks(s, "checkpoint");
    }
    rocksdb::WriteOptions options;
    options.sync =
        false;  // the WAL is written; a machine crash may lose the tail, a process crash cannot
    rocksdb::Status s = db_->Write(options, batch_.GetWriteBatch());
    if (!s.ok()) return FromRocks(s, "commit");
    watermarks_->Advance(checkpoints);
    return absl::OkStatus();
  }

 private:
  rocksdb::DB* db_;
  Watermarks* watermarks_;
  rocksdb::WriteBatchWithIndex batch_;
  RocksView view_;
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
  store->dir_ = dir;
  {
    absl::MutexLock lock(&store->db_mu_);
    store->db_ = raw;
  }
  store->committed_ =
      std::make_unique<RocksView>(store->name_, &store->db_mu_, &store->db_, nullptr);
  absl::StatusOr<Checkpoints> checkpoints = store->LoadCheckpoints();
  if (!checkpoints.ok()) return checkpoints.status();
  store->watermarks_.Advance(*checkpoints);
  return store;
}

RocksViewStore::~RocksViewStore() {
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
  absl::MutexLock lock(&db_mu_);
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
  return std::unique_ptr<Batch>(new RocksBatch(name_, db_, &watermarks_));
}

}  // namespace leftfold::internal::store
