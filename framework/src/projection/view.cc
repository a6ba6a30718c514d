#include "leftfold/view.h"

#include <cstring>
#include <typeinfo>

#include "absl/strings/str_cat.h"
#include "projection/row_codec.h"

namespace leftfold {

absl::Status ViewRow::To(google::protobuf::Message* row) const {
  if (!value.UnpackTo(row)) {
    return absl::InvalidArgumentError(
        absl::StrCat("row '", key, "' holds ", value.type_url(), ", not ", row->GetTypeName()));
  }
  return absl::OkStatus();
}

namespace {

// Rows are stored as a serialized google.protobuf.Any: field 1 the type URL, field 2 the row.
// Encoded and decoded here by hand, because going through an Any message copied every row twice
// more (into the Any, then out of it) on the projector's hot path. Same bytes as
// Any::SerializeAsString.
constexpr char kTypeUrlPrefix[] = "type.googleapis.com/";

void AppendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool ReadVarint(absl::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (byte < 0x80) return true;
  }
  return false;
}

// Splits a serialized Any into its type URL and value; false when it is not one we wrote.
bool SplitAny(absl::string_view in, absl::string_view& type_url, absl::string_view& value) {
  type_url = value = absl::string_view();
  while (!in.empty()) {
    uint64_t tag = 0, size = 0;
    if (!ReadVarint(in, tag) || (tag != 0x0a && tag != 0x12) || !ReadVarint(in, size) ||
        size > in.size()) {
      return false;
    }
    (tag == 0x0a ? type_url : value) = in.substr(0, size);
    in.remove_prefix(size);
  }
  return true;
}

// The message's full type name, remembered for the last C++ type seen on this thread: a
// generated class has exactly one descriptor, and GetDescriptor()'s lazy-initialisation check
// cost ~5-10% of a projector's time. A DynamicMessage is one C++ class for many descriptors, so
// it is never remembered.
const std::string& FullName(const google::protobuf::Message& m) {
  thread_local const std::type_info* last_type = nullptr;
  thread_local const std::string* last_name = nullptr;
  const std::type_info& type = typeid(m);
  if (last_type != nullptr && *last_type == type) return *last_name;
  const std::string& name = m.GetDescriptor()->full_name();  // lives as long as the program
  if (std::strstr(type.name(), "DynamicMessage") == nullptr) {
    last_type = &type;
    last_name = &name;
  }
  return name;
}

}  // namespace

namespace internal::projection {

void EncodeRow(const google::protobuf::Message& row, std::string* out) {
  const std::string& type = FullName(row);
  const size_t url_size = sizeof(kTypeUrlPrefix) - 1 + type.size();
  const size_t size = row.ByteSizeLong();
  out->clear();
  out->reserve(url_size + size + 12);
  out->push_back(0x0a);
  AppendVarint(*out, url_size);
  out->append(kTypeUrlPrefix).append(type);
  if (size > 0) {
    out->push_back(0x12);
    AppendVarint(*out, size);
    const size_t at = out->size();
    out->resize(at + size);
    row.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(&(*out)[at]));
  }
}

bool DecodeRow(absl::string_view any_bytes, google::protobuf::Message* row) {
  absl::string_view type_url, value;
  if (!SplitAny(any_bytes, type_url, value)) return false;
  const size_t slash = type_url.rfind('/');
  return slash != absl::string_view::npos && type_url.substr(slash + 1) == FullName(*row) &&
         row->ParseFromArray(value.data(), static_cast<int>(value.size()));
}

bool SameMessageType(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  const std::type_info& type = typeid(a);
  if (type != typeid(b)) return false;
  // One generated C++ class is one message type; a DynamicMessage class serves many.
  thread_local const std::type_info* last_type = nullptr;
  thread_local bool last_dynamic = false;
  if (last_type == nullptr || *last_type != type) {
    last_type = &type;
    last_dynamic = std::strstr(type.name(), "DynamicMessage") != nullptr;
  }
  return !last_dynamic || a.GetDescriptor() == b.GetDescriptor();
}

absl::Status RowNotFound(absl::string_view view, absl::string_view key) {
  return absl::NotFoundError(absl::StrCat("view ", view, " has no row '", key, "'"));
}

absl::Status RowTypeMismatch(absl::string_view view, absl::string_view key,
                             const google::protobuf::Message& row) {
  return absl::InvalidArgumentError(
      absl::StrCat("view ", view, " row '", key, "' is not a ", row.GetTypeName()));
}

}  // namespace internal::projection

absl::Status View::Get(ViewKey key, google::protobuf::Message* row) const {
  if (std::optional<absl::Status> done = GetMessage(key.str(), row)) return *std::move(done);
  absl::StatusOr<std::optional<std::string>> raw = GetRaw(key.str());
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) return internal::projection::RowNotFound(name(), key.str());
  if (!internal::projection::DecodeRow(**raw, row)) {
    return internal::projection::RowTypeMismatch(name(), key.str(), *row);
  }
  return absl::OkStatus();
}

absl::Status View::Put(ViewKey key, const google::protobuf::Message& row) {
  if (std::optional<absl::Status> done = PutMessage(key.str(), row)) return *std::move(done);
  std::string out;
  internal::projection::EncodeRow(row, &out);
  return PutRaw(key.str(), std::move(out));
}

absl::Status View::Delete(ViewKey key) { return DeleteRaw(key.str()); }

absl::StatusOr<ScanPage> View::Scan(const ScanRange& range) const { return ScanRaw(range); }

}  // namespace leftfold
