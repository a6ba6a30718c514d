#include "processor/store_writer.h"

namespace leftfold::internal::processor {

StoreWriter::StoreWriter(size_t max_pending) : writer_(max_pending, "lf-store-write") {}

StoreWriter::~StoreWriter() = default;

uint64_t StoreWriter::Enqueue(std::shared_ptr<const Batch> batch) {
  return writer_.Enqueue([batch = std::move(batch)]() -> absl::Status {
    for (const auto& [store, update] : *batch) {
      if (absl::Status s = store->Write(update); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
}

absl::Status StoreWriter::Drain() { return writer_.Drain(); }

uint64_t StoreWriter::applied() const { return writer_.applied(); }

absl::Status StoreWriter::error() const { return writer_.error(); }

}  // namespace leftfold::internal::processor
