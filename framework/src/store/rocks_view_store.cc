#include "store/rocks_view_store.h"

#include <filesystem>
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
  RocksView(const std::string& name, rocksdb::DB* db, rocksdb::WriteBatchWithIndex* batch)
      : name_(name), db_(db), batch_(batch) {}

  const std::string& name() const override { return name_; }

 protected:
  absl::StatusOr<std::optional<std::string>> GetRaw(absl::string_view key) const override {
    std::string value;
    const std::string k = RowKey(key);
    rocksdb::Status s = batch_ ? batch_->GetFromBatchAndDB(db_, rocksdb::ReadOptions(), k, &value)
                               : db_->Get(rocksdb::ReadOptions(), k, &value);
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
    ScanPlan plan(range);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
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
  const std::string& name_;
  rocksdb::DB* db_;
  rocksdb::WriteBatchWithIndex* batch_;
};

class RocksBatch : public Batch {
 public:
  RocksBatch(const std::string& name, rocksdb::DB* db, Watermarks* watermarks)
      : db_(db),
        watermarks_(watermarks),
        batch_(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true),
        view_(name, db, &batch_) {}

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
  store->db_.reset(raw);
  store->committed_ = std::make_unique<RocksView>(store->name_, raw, nullptr);
  absl::StatusOr<Checkpoints> checkpoints = store->LoadCheckpoints();
  if (!checkpoints.ok()) return checkpoints.status();
  store->watermarks_.Advance(*checkpoints);
  return store;
}

RocksViewStore::~RocksViewStore() {
  committed_.reset();
  if (db_) db_->Close().PermitUncheckedError();
}

absl::StatusOr<Checkpoints> RocksViewStore::LoadCheckpoints() {
  Checkpoints out;
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
  return std::unique_ptr<Batch>(new RocksBatch(name_, db_.get(), &watermarks_));
}

}  // namespace leftfold::internal::store
