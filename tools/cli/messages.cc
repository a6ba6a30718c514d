#include "messages.h"

#include <algorithm>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor_database.h"
#include "google/protobuf/util/json_util.h"

namespace leftfold::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;

void CollectNames(const Descriptor& d, std::vector<std::string>& out) {
  out.push_back(d.full_name());
  for (int i = 0; i < d.nested_type_count(); ++i) CollectNames(*d.nested_type(i), out);
}

google::protobuf::util::JsonPrintOptions PrintOptions() {
  google::protobuf::util::JsonPrintOptions options;
  // Zero versions and empty fields are information on a command line ("version 0").
  options.always_print_primitive_fields = true;
  return options;
}

}  // namespace

std::vector<std::string> AllMessageNames() {
  // The generated pool builds files lazily and cannot be enumerated; its backing database (an
  // "internal" accessor, the only way in protobuf 3.21) knows every linked file.
  std::vector<std::string> files;
  DescriptorPool::internal_generated_database()->FindAllFileNames(&files);
  std::vector<std::string> names;
  for (const std::string& file : files) {
    const google::protobuf::FileDescriptor* fd =
        DescriptorPool::generated_pool()->FindFileByName(file);
    if (fd == nullptr) continue;
    for (int i = 0; i < fd->message_type_count(); ++i) CollectNames(*fd->message_type(i), names);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

absl::StatusOr<const Descriptor*> ResolveMessageType(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("command type: must not be empty");
  if (const Descriptor* d = DescriptorPool::generated_pool()->FindMessageTypeByName(name)) {
    return d;
  }
  std::vector<std::string> candidates;
  for (const std::string& full : AllMessageNames()) {
    if (full.size() > name.size() && absl::EndsWith(full, name) &&
        full[full.size() - name.size() - 1] == '.') {
      candidates.push_back(full);
    }
  }
  if (candidates.empty()) {
    return absl::NotFoundError(absl::StrCat("unknown message type '", name,
                                            "': no message of that name is linked into leftfold"));
  }
  if (candidates.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("message type '", name, "' is ambiguous: ", absl::StrJoin(candidates, ", "),
                     "; use the full name"));
  }
  return DescriptorPool::generated_pool()->FindMessageTypeByName(candidates.front());
}

absl::StatusOr<google::protobuf::Any> JsonToAny(const Descriptor& descriptor,
                                                const std::string& json) {
  const google::protobuf::Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(&descriptor);
  if (prototype == nullptr) {
    return absl::InternalError(absl::StrCat("no prototype for ", descriptor.full_name()));
  }
  std::unique_ptr<google::protobuf::Message> message(prototype->New());
  auto s = google::protobuf::util::JsonStringToMessage(json, message.get());
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad JSON for ", descriptor.full_name(), ": ", std::string(s.message())));
  }
  google::protobuf::Any any;
  any.PackFrom(*message);
  return any;
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  auto s = google::protobuf::util::MessageToJsonString(message, &out, PrintOptions());
  if (s.ok()) return out;
  return absl::StrCat("{\"error\":\"cannot render ", message.GetTypeName(), ": ",
                      std::string(s.message()), "\"}");
}

std::string TypeName(const google::protobuf::Any& any) {
  const std::string& url = any.type_url();
  size_t slash = url.rfind('/');
  return slash == std::string::npos ? url : url.substr(slash + 1);
}

std::string AnyToJson(const google::protobuf::Any& any) {
  const Descriptor* d = DescriptorPool::generated_pool()->FindMessageTypeByName(TypeName(any));
  if (d == nullptr) {
    return absl::StrCat("{\"@unknownType\":\"", any.type_url(), "\",\"bytes\":", any.value().size(),
                        "}");
  }
  std::unique_ptr<google::protobuf::Message> message(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(d)->New());
  if (!any.UnpackTo(message.get())) {
    return absl::StrCat("{\"@unparseable\":\"", any.type_url(), "\"}");
  }
  return ToJson(*message);
}

}  // namespace leftfold::cli
