#include "processor/command_parser.h"

#include <cstring>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/wire_format_lite.h"

namespace leftfold::internal::processor {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

constexpr uint32_t Delimited(int field) {
  return static_cast<uint32_t>(field) << 3 | WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
}
constexpr uint32_t Varint(int field) {
  return static_cast<uint32_t>(field) << 3 | WireFormatLite::WIRETYPE_VARINT;
}

// Reads the wire format as protobuf's parser (ParseContext) does, with its CodedInputStream.
// Where the two differ, this follows the parser: a tag or a length takes at most five bytes,
// a length at most INT_MAX - 16, an unknown field's number is not 0, a group must end with its
// own number, and sub-messages and groups nest at most 100 deep.
class WireReader {
 public:
  explicit WireReader(absl::string_view bytes)
      : bytes_(bytes),
        in_(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size())) {}

  // The next tag, or 0 at the end of the bytes or of the current sub-message (then ended()) or
  // on malformed input.
  uint32_t Tag() {
    const int before = in_.CurrentPosition();
    const uint32_t tag = in_.ReadTag();
    if (in_.CurrentPosition() - before > 5) {
      malformed_ = true;
      return 0;
    }
    return tag;
  }
  // After Tag() returned 0: the message ended where it should.
  bool ended() { return !malformed_ && in_.ConsumedEntireMessage(); }

  bool Varint(uint64_t& value) { return in_.ReadVarint64(&value); }

  // A length-delimited value, as a view of the bytes.
  bool View(absl::string_view& out) {
    int size = 0;
    if (!Size(size)) return false;
    const int at = in_.CurrentPosition();
    if (!in_.Skip(size)) return false;
    out = bytes_.substr(static_cast<size_t>(at), static_cast<size_t>(size));
    return true;
  }
  bool String(absl::string_view& out) { return View(out) && IsValidUtf8(out); }

  // One length-delimited sub-message; `field(tag)` reads or skips each of its fields.
  template <typename ReadField>
  bool Message(ReadField field) {
    int size = 0;
    if (!Size(size) || size > BytesLeft() || --depth_left_ < 0) return false;
    const CodedInputStream::Limit limit = in_.PushLimit(size);
    while (const uint32_t tag = Tag()) {
      if (!field(tag)) return false;
    }
    if (!ended()) return false;
    in_.PopLimit(limit);
    ++depth_left_;
    return true;
  }

  // A field this reading does not keep, skipped as protobuf skips an unknown field.
  bool Skip(uint32_t tag) {
    if (WireFormatLite::GetTagFieldNumber(tag) == 0) return false;
    switch (WireFormatLite::GetTagWireType(tag)) {
      case WireFormatLite::WIRETYPE_VARINT: {
        uint64_t ignored;
        return in_.ReadVarint64(&ignored);
      }
      case WireFormatLite::WIRETYPE_FIXED64:
        return in_.Skip(8);
      case WireFormatLite::WIRETYPE_FIXED32:
        return in_.Skip(4);
      case WireFormatLite::WIRETYPE_LENGTH_DELIMITED: {
        int size = 0;
        return Size(size) && in_.Skip(size);
      }
      case WireFormatLite::WIRETYPE_START_GROUP: {
        if (--depth_left_ < 0) return false;
        const uint32_t end = WireFormatLite::MakeTag(WireFormatLite::GetTagFieldNumber(tag),
                                                     WireFormatLite::WIRETYPE_END_GROUP);
        for (;;) {
          const uint32_t inner = Tag();
          if (inner == end) break;
          if (inner == 0 ||
              WireFormatLite::GetTagWireType(inner) == WireFormatLite::WIRETYPE_END_GROUP) {
            return false;  // the bytes or the message ended, or another group's end
          }
          if (!Skip(inner)) return false;
        }
        ++depth_left_;
        return true;
      }
      default:  // an END_GROUP without its start, or wire types 6 and 7
        return false;
    }
  }

 private:
  bool Size(int& size) {
    const int before = in_.CurrentPosition();
    uint64_t value = 0;
    if (!in_.ReadVarint64(&value) || in_.CurrentPosition() - before > 5 ||
        value > static_cast<uint64_t>(INT32_MAX - 16)) {
      return false;
    }
    size = static_cast<int>(value);
    return true;
  }
  int BytesLeft() const { return static_cast<int>(bytes_.size()) - in_.CurrentPosition(); }

  absl::string_view bytes_;
  CodedInputStream in_;
  int depth_left_ = 100;  // protobuf's default recursion limit
  bool malformed_ = false;
};

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  // Commands' ids are mostly ASCII: eight bytes at a time, then protobuf's own validator for
  // the rest when any byte has its high bit set.
  const char* data = text.data();
  const size_t size = text.size();
  uint64_t high = 0;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, data + i, sizeof(word));
    high |= word;
  }
  for (; i < size; ++i) high |= static_cast<uint8_t>(data[i]);
  if ((high & 0x8080808080808080ULL) == 0) return true;
  return google::protobuf::internal::IsStructurallyValidUTF8(data, static_cast<int>(size));
}

bool ParseCommandEnvelope(absl::string_view bytes, ParsedCommand& out) {
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) return false;
  out = ParsedCommand{};
  CommandFields& fields = out.fields;
  fields.serialized = bytes;
  WireReader in(bytes);
  while (const uint32_t tag = in.Tag()) {
    bool ok = true;
    switch (tag) {
      case Delimited(1):
        ok = in.String(fields.command_id);
        break;
      case Delimited(2):
        ok = in.String(fields.aggregate_type);
        break;
      case Delimited(3):
        ok = in.String(fields.aggregate_id);
        break;
      case Varint(4): {
        uint64_t version = 0;
        ok = in.Varint(version);
        out.expected_version = static_cast<int64_t>(version);
        break;
      }
      case Delimited(5):  // google.protobuf.Any; occurrences merge
        ok = in.Message([&](uint32_t any_tag) {
          if (any_tag == Delimited(1)) return in.String(fields.payload_type_url);
          if (any_tag == Delimited(2)) return in.View(fields.payload_value);
          return in.Skip(any_tag);
        });
        break;
      case Delimited(6): {  // a metadata entry: its final key and value must be UTF-8
        absl::string_view key, value;
        ok = in.Message([&](uint32_t entry_tag) {
          if (entry_tag == Delimited(1)) return in.View(key);
          if (entry_tag == Delimited(2)) return in.View(value);
          return in.Skip(entry_tag);
        });
        ok = ok && IsValidUtf8(key) && IsValidUtf8(value);
        break;
      }
      case Delimited(7):
        ok = in.String(out.correlation_id);
        break;
      case Delimited(8):  // google.protobuf.Timestamp: numbers only, any well-formed fields
        ok = in.Message([&](uint32_t time_tag) { return in.Skip(time_tag); });
        break;
      default:
        ok = in.Skip(tag);
    }
    if (!ok) return false;
  }
  return in.ended();
}

}  // namespace leftfold::internal::processor
