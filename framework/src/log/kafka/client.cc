#include "log/kafka/client.h"

#include <algorithm>
#include <climits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "log/errors.h"

namespace leftfold::internal::log::kafka {

absl::StatusOr<ConfPtr> BuildConf(const std::string& brokers,
                                  const std::vector<const Properties*>& layers) {
  ConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  auto set = [&](const std::string& name, const std::string& value) -> absl::Status {
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat("kafka property ", name, "=", value, ": ", errstr));
    }
    return absl::OkStatus();
  };
  if (absl::Status s = set("bootstrap.servers", brokers); !s.ok()) return s;
  for (const Properties* layer : layers) {
    if (layer == nullptr) continue;
    for (const auto& [name, value] : *layer) {
      if (absl::StartsWith(name, kOwnPropertyPrefix)) continue;
      if (absl::Status s = set(name, value); !s.ok()) return s;
    }
  }
  return conf;
}

absl::StatusOr<HandlePtr> NewHandle(rd_kafka_type_t type, ConfPtr conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("rd_kafka_new: ", errstr));
  }
  conf.release();  // now owned by rk
  return HandlePtr(rk);
}

int ToMillis(absl::Duration d) {
  int64_t ms = absl::ToInt64Milliseconds(d);
  return static_cast<int>(std::clamp<int64_t>(ms, 0, INT_MAX));
}

bool IsFencedCode(rd_kafka_resp_err_t code) {
  return code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
         code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

namespace {

absl::Status StatusForCode(rd_kafka_resp_err_t code, const std::string& message) {
  if (IsFencedCode(code)) return FatalError(message);
  switch (code) {
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__NODE_UPDATE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
      return RetriableError(message);
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
      return AbortableError(message);
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return absl::InvalidArgumentError(message);
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
      return absl::NotFoundError(message);
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__UNKNOWN_GROUP:
      return absl::FailedPreconditionError(message);
    case RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
      return absl::UnimplementedError(message);
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
      return absl::PermissionDeniedError(message);
    default:
      // Unknown to us: stop rather than guess (ClassifyError: kFatal).
      return absl::UnknownError(message);
  }
}

}  // namespace

absl::Status StatusFromError(absl::string_view op, rd_kafka_error_t* error) {
  if (error == nullptr) return absl::OkStatus();
  RdPtr<rd_kafka_error_t> owned(error);
  rd_kafka_resp_err_t code = rd_kafka_error_code(error);
  std::string message =
      absl::StrCat(op, ": ", rd_kafka_error_string(error), " (", rd_kafka_error_name(error), ")");
  if (rd_kafka_error_is_fatal(error) || IsFencedCode(code)) return FatalError(message);
  if (rd_kafka_error_txn_requires_abort(error)) return AbortableError(message);
  if (rd_kafka_error_is_retriable(error)) return RetriableError(message);
  return StatusForCode(code, message);
}

absl::Status StatusFromCode(absl::string_view op, rd_kafka_resp_err_t code,
                            absl::string_view detail) {
  if (code == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  std::string message =
      absl::StrCat(op, ": ", detail.empty() ? absl::string_view(rd_kafka_err2str(code)) : detail,
                   " (", rd_kafka_err2name(code), ")");
  return StatusForCode(code, message);
}

PartitionListPtr ToList(const std::vector<TopicPartition>& partitions) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const TopicPartition& tp : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  }
  return list;
}

PartitionListPtr ToList(const std::vector<TopicPartitionOffset>& offsets) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const TopicPartitionOffset& tpo : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), tpo.tp.topic.c_str(), tpo.tp.partition)->offset =
        tpo.offset;
  }
  return list;
}

std::vector<TopicPartition> PartitionsOf(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  if (list == nullptr) return out;
  out.reserve(list->cnt);
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  return out;
}

std::vector<TopicPartitionOffset> OffsetsOf(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartitionOffset> out;
  if (list == nullptr) return out;
  out.reserve(list->cnt);
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& e = list->elems[i];
    out.push_back({{e.topic, e.partition}, e.offset < 0 ? -1 : e.offset});
  }
  return out;
}

absl::Status FirstPartitionError(absl::string_view op,
                                 const rd_kafka_topic_partition_list_t* list) {
  if (list == nullptr) return absl::OkStatus();
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& e = list->elems[i];
    if (e.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return StatusFromCode(absl::StrCat(op, " ", e.topic, "/", e.partition), e.err);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int32_t> LookupPartitionCount(rd_kafka_t* rk, const std::string& topic,
                                             absl::Duration timeout) {
  RdPtr<rd_kafka_topic_t> rkt(rd_kafka_topic_new(rk, topic.c_str(), nullptr));
  if (rkt == nullptr) {
    return StatusFromCode(absl::StrCat("metadata of topic ", topic), rd_kafka_last_error());
  }
  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt.get(), &raw, ToMillis(timeout));
  MetadataPtr md(raw);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // No answer in time is the broker's problem, not the topic's.
    return RetriableError(absl::StrCat("metadata of topic ", topic, ": ", rd_kafka_err2str(err),
                                       " (", rd_kafka_err2name(err), ")"));
  }
  for (int i = 0; i < md->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& t = md->topics[i];
    if (topic != t.topic) continue;
    if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        t.err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
      return absl::NotFoundError(absl::StrCat("unknown topic ", topic));
    }
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return StatusFromCode(absl::StrCat("metadata of topic ", topic), t.err);
    }
    if (t.partition_cnt == 0) return absl::NotFoundError(absl::StrCat("unknown topic ", topic));
    return t.partition_cnt;
  }
  return absl::NotFoundError(absl::StrCat("unknown topic ", topic));
}

absl::StatusOr<int32_t> LookupPartitionCount(const ClientSettings& settings, rd_kafka_t* rk,
                                             const std::string& topic, absl::Duration timeout) {
  if (settings.topic_known && !settings.topic_known(topic)) {
    return absl::NotFoundError(absl::StrCat("unknown topic ", topic));
  }
  return LookupPartitionCount(rk, topic, timeout);
}

}  // namespace leftfold::internal::log::kafka
