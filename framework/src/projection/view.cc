#include "leftfold/view.h"

#include "absl/strings/str_cat.h"

namespace leftfold {

absl::Status ViewRow::To(google::protobuf::Message* row) const {
  if (!value.UnpackTo(row)) {
    return absl::InvalidArgumentError(
        absl::StrCat("row '", key, "' holds ", value.type_url(), ", not ", row->GetTypeName()));
  }
  return absl::OkStatus();
}

absl::Status View::Get(ViewKey key, google::protobuf::Message* row) const {
  absl::StatusOr<std::optional<std::string>> raw = GetRaw(key.str());
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) {
    return absl::NotFoundError(absl::StrCat("view ", name(), " has no row '", key.str(), "'"));
  }
  google::protobuf::Any any;
  if (!any.ParseFromString(**raw) || !any.UnpackTo(row)) {
    return absl::InvalidArgumentError(
        absl::StrCat("view ", name(), " row '", key.str(), "' is not a ", row->GetTypeName()));
  }
  return absl::OkStatus();
}

absl::Status View::Put(ViewKey key, const google::protobuf::Message& row) {
  google::protobuf::Any any;
  any.PackFrom(row);
  return PutRaw(key.str(), any.SerializeAsString());
}

absl::Status View::Delete(ViewKey key) { return DeleteRaw(key.str()); }

absl::StatusOr<ScanPage> View::Scan(const ScanRange& range) const { return ScanRaw(range); }

}  // namespace leftfold
