// The bytes of a stored view row: a serialized google.protobuf.Any (field 1 the type URL, field 2
// the row), encoded and decoded by hand (no Any message copies). Shared by View (view.cc) and the
// RocksDB store, whose batches keep rows as messages and serialize each once, at the commit.
//
//   std::string bytes;
//   EncodeRow(account, &bytes);                    // same bytes as Any::PackFrom + Serialize
//   bool ok = DecodeRow(bytes, &account);          // false: not an Any of the row's type
//
// Stateless functions; thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace leftfold::internal::projection {

// Replaces `*out` by `row` packed as a serialized Any (keeps `out`'s buffer).
void EncodeRow(const google::protobuf::Message& row, std::string* out);
// Parses `any_bytes` into `row`; false when they are not an Any holding the row's type.
bool DecodeRow(absl::string_view any_bytes, google::protobuf::Message* row);
// True when `a` and `b` are of the same message type (cheap for generated classes: no
// descriptor lookup).
bool SameMessageType(const google::protobuf::Message& a, const google::protobuf::Message& b);
// `*to` = `from`, both of the same type (SameMessageType). Message::CopyFrom would go through
// reflection; Clear + MergeFrom takes the generated code.
inline void CopyMessage(const google::protobuf::Message& from, google::protobuf::Message* to) {
  to->Clear();
  to->MergeFrom(from);
}
// The errors View::Get returns, for backends that answer it themselves.
absl::Status RowNotFound(absl::string_view view, absl::string_view key);
absl::Status RowTypeMismatch(absl::string_view view, absl::string_view key,
                             const google::protobuf::Message& row);

}  // namespace leftfold::internal::projection
