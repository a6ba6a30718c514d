#include "fault_support.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bank/bank_aggregate.h"
#include "bank/v1/bank.pb.h"
#include "leftfold/aggregate.h"

extern char** environ;

namespace leftfold::testing::fault {

using internal::log::Record;

// ---------------------------------------------------------------------------------------------
// ChildProcess

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    const std::vector<std::string>& argv, const std::string& log_path) {
  if (argv.empty()) return absl::InvalidArgumentError("Spawn: empty argv");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("posix_spawn ", argv[0], ": ", strerror(rc)));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, log_path));
}

ChildProcess::~ChildProcess() { KillAndReap(); }

bool ChildProcess::Running() {
  if (wait_status_.has_value()) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    wait_status_ = status;
    return false;
  }
  return true;
}

void ChildProcess::Signal(int sig) {
  if (Running()) kill(pid_, sig);
}

std::optional<int> ChildProcess::WaitExit(absl::Duration timeout) {
  WaitFor([this] { return !Running(); }, timeout);
  return wait_status_;
}

void ChildProcess::KillAndReap() {
  if (!Running()) return;
  kill(pid_, SIGKILL);
  int status = 0;
  if (waitpid(pid_, &status, 0) == pid_) wait_status_ = status;
}

std::string ChildProcess::DescribeExit() const {
  if (!wait_status_.has_value()) return "running";
  int s = *wait_status_;
  if (WIFEXITED(s)) return absl::StrCat("exit ", WEXITSTATUS(s));
  if (WIFSIGNALED(s)) return absl::StrCat("signal ", WTERMSIG(s));
  return absl::StrCat("status ", s);
}

std::string ChildProcess::ReadLog() const {
  std::ifstream in(log_path_);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

int ChildProcess::CountInLog(std::string_view needle) const {
  std::string log = ReadLog();
  int count = 0;
  for (size_t pos = log.find(needle); pos != std::string::npos;
       pos = log.find(needle, pos + needle.size())) {
    ++count;
  }
  return count;
}

std::string ChildProcess::Tail(int lines) const {
  std::vector<std::string> all = absl::StrSplit(ReadLog(), '\n');
  size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  return absl::StrJoin(all.begin() + static_cast<std::ptrdiff_t>(from), all.end(), "\n");
}

std::set<int32_t> OwnedPartitions(const ChildProcess& child) {
  std::set<int32_t> owned;
  for (absl::string_view line : absl::StrSplit(child.ReadLog(), '\n')) {
    bool assigned = line.find("msg=\"partition assigned\"") != absl::string_view::npos;
    bool revoked = line.find("msg=\"partition revoked\"") != absl::string_view::npos;
    if (!assigned && !revoked) continue;
    size_t at = line.find(" partition=");
    if (at == absl::string_view::npos) continue;
    int32_t partition = std::atoi(std::string(line.substr(at + 11)).c_str());
    if (assigned) {
      owned.insert(partition);
    } else {
      owned.erase(partition);
    }
  }
  return owned;
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout,
             const std::function<void()>& tick) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (tick) tick();
    if (condition()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));  // polling interval of the condition, not a wait for it
  }
}

// ---------------------------------------------------------------------------------------------
// LoadDriver

LoadDriver::LoadDriver(internal::log::Log& log, std::string commands_topic, LoadOptions options)
    : log_(log), topic_(std::move(commands_topic)), options_(options) {
  Generate();
}

LoadDriver::~LoadDriver() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void LoadDriver::Generate() {
  std::mt19937_64 rng(options_.seed);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  AggregateDefinition definition = bank::AccountDefinition();
  struct Model {
    std::unique_ptr<google::protobuf::Message> state;
    int64_t version = 0;
  };
  std::vector<Model> accounts(static_cast<size_t>(options_.accounts));
  for (Model& m : accounts) m.state = definition.NewState();
  auto account_id = [&](int k) { return absl::StrCat("acct-", options_.seed, "-", k); };

  for (int i = 0; i < options_.commands; ++i) {
    if (i >= options_.accounts && !stream_.empty() && chance(options_.resubmit_fraction)) {
      stream_.push_back(
          stream_[static_cast<size_t>(uniform(0, static_cast<int64_t>(stream_.size()) - 1))]);
      continue;  // same id: the model ignores it, as the processor must
    }
    int k = i < options_.accounts ? i : static_cast<int>(uniform(0, options_.accounts - 1));
    Model& model = accounts[static_cast<size_t>(k)];
    v1::CommandEnvelope command;
    command.set_command_id(absl::StrCat("cmd-", options_.seed, "-", i));
    command.set_aggregate_type(bank::kAccountType);
    command.set_aggregate_id(account_id(k));
    if (i < options_.accounts) {
      bank::v1::OpenAccount open;
      open.set_owner(absl::StrCat("owner-", k));
      open.set_initial_deposit(1000);
      command.mutable_payload()->PackFrom(open);
    } else {
      int64_t kind = uniform(0, 99);
      if (kind < 55) {
        bank::v1::Deposit d;
        d.set_amount(uniform(1, 300));
        command.mutable_payload()->PackFrom(d);
      } else if (kind < 97) {
        bank::v1::Withdraw w;
        w.set_amount(uniform(1, 700));
        command.mutable_payload()->PackFrom(w);
      } else {
        bank::v1::OpenAccount open;  // already open: rejected
        open.set_owner("again");
        command.mutable_payload()->PackFrom(open);
      }
      if (chance(options_.expected_version_fraction)) {
        command.set_expected_version(chance(0.5) ? model.version : model.version + 1);
      }
    }
    v1::CommandResult::Outcome outcome;
    if (command.has_expected_version() && command.expected_version() != model.version) {
      outcome = v1::CommandResult::CONFLICT;
    } else {
      DecideResult decided = definition.Decide(*model.state, command, Version(model.version));
      switch (decided.kind) {
        case DecideResult::Kind::kAccepted:
          outcome = v1::CommandResult::ACCEPTED;
          model.version += static_cast<int64_t>(decided.events.size());
          model.state = std::move(decided.new_state);
          break;
        case DecideResult::Kind::kRejected:
          outcome = v1::CommandResult::REJECTED;
          break;
        default:
          outcome = v1::CommandResult::FAILED;
          break;
      }
    }
    model_outcomes_[command.command_id()] = outcome;
    command_ids_.insert(command.command_id());
    stream_.push_back(std::move(command));
  }
}

void LoadDriver::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void LoadDriver::Loop() {
  absl::StatusOr<std::unique_ptr<internal::log::Producer>> producer = log_.NewProducer({});
  if (!producer.ok()) {
    error_ = producer.status().ToString();
    done_.store(true);
    return;
  }
  std::vector<std::string> values;
  values.reserve(stream_.size());
  for (const v1::CommandEnvelope& c : stream_) values.push_back(c.SerializeAsString());
  std::deque<size_t> retry;
  int64_t in_flight = 0;
  size_t next = 0;
  absl::Time start = absl::Now();
  auto produce = [&](size_t index) {
    absl::Status s = (*producer)->Produce(
        {.topic = topic_, .key = stream_[index].aggregate_id(), .value = values[index]},
        [this, index, &retry, &in_flight](absl::StatusOr<internal::log::TopicPartitionOffset> d) {
          --in_flight;
          if (d.ok()) {
            acked_.fetch_add(1);
          } else {
            retries_.fetch_add(1);
            retry.push_back(index);
          }
        });
    if (s.ok()) ++in_flight;
    return s.ok();
  };
  while (!stop_.load()) {
    size_t due =
        std::min(stream_.size(),
                 static_cast<size_t>(absl::ToDoubleSeconds(absl::Now() - start) * options_.rate));
    bool blocked = false;
    while (!retry.empty() && !blocked) {
      if (produce(retry.front())) {
        retry.pop_front();
      } else {
        blocked = true;
      }
    }
    while (next < due && !blocked) {
      if (produce(next)) {
        ++next;
      } else {
        retries_.fetch_add(1);
        blocked = true;
      }
    }
    if (next == stream_.size() && retry.empty() && in_flight == 0) break;
    (void)(*producer)->Flush(absl::Milliseconds(1));  // serves delivery callbacks
    absl::SleepFor(blocked ? absl::Milliseconds(100) : absl::Milliseconds(2));  // rate pacing
  }
  (void)(*producer)->Close();
  done_.store(true);
}

absl::Status LoadDriver::Finish(absl::Duration timeout) {
  bool finished = WaitFor([this] { return done_.load(); }, timeout);
  if (!finished) {
    return absl::DeadlineExceededError(
        absl::StrCat("load driver: ", acked(), " of ", total(), " acknowledged"));
  }
  if (thread_.joinable()) thread_.join();
  if (!error_.empty()) return absl::InternalError(error_);
  if (acked() < total()) {
    return absl::InternalError(absl::StrCat("load driver stopped at ", acked(), "/", total()));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// ResultWatcher

ResultWatcher::ResultWatcher(internal::log::Log& log, std::string results_topic,
                             int32_t partitions) {
  auto consumer = log.NewConsumer({});
  if (!consumer.ok()) return;
  consumer_ = *std::move(consumer);
  std::vector<internal::log::TopicPartitionOffset> assignment;
  for (int32_t p = 0; p < partitions; ++p) assignment.push_back({{results_topic, p}, 0});
  (void)consumer_->Assign(assignment);
}

size_t ResultWatcher::Poll() {
  if (consumer_ == nullptr) return 0;
  auto batch = consumer_->Poll(10000, absl::Milliseconds(100));
  if (!batch.ok()) return 0;
  for (const Record& r : *batch) {
    v1::CommandResult result;
    if (result.ParseFromString(r.value)) seen_.insert(result.command_id());
  }
  return batch->size();
}

bool ResultWatcher::HasAll(const std::set<std::string>& ids) const {
  if (seen_.size() < ids.size()) return false;
  return std::includes(seen_.begin(), seen_.end(), ids.begin(), ids.end());
}

std::vector<std::string> ResultWatcher::Missing(const std::set<std::string>& ids,
                                                size_t limit) const {
  std::vector<std::string> missing;
  for (const std::string& id : ids) {
    if (!seen_.contains(id)) missing.push_back(id);
    if (missing.size() >= limit) break;
  }
  return missing;
}

// ---------------------------------------------------------------------------------------------
// Reading topics and checking invariants

absl::StatusOr<std::vector<Record>> ReadTopic(internal::log::Log& log, const std::string& topic,
                                              int32_t partitions, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<std::vector<int64_t>> ends =
      log.admin().EndOffsets(topic, internal::log::Isolation::kReadCommitted);
  while (!ends.ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));  // retry interval
    ends = log.admin().EndOffsets(topic, internal::log::Isolation::kReadCommitted);
  }
  if (!ends.ok()) return ends.status();
  // A transaction left open by a killed instance holds the last stable offset back until the
  // broker aborts it (transaction timeout + its abort sweep); read only once every partition is
  // stable (LSO == high watermark), so the check sees everything that will ever be committed.
  for (;;) {
    auto high = log.admin().EndOffsets(topic, internal::log::Isolation::kReadUncommitted);
    if (high.ok() && *high == *ends) break;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(topic, ": open transactions never resolved; read_committed ends ",
                       absl::StrJoin(*ends, ","), ", high watermarks ",
                       high.ok() ? absl::StrJoin(*high, ",") : high.status().ToString()));
    }
    absl::SleepFor(absl::Milliseconds(200));  // retry interval
    auto again = log.admin().EndOffsets(topic, internal::log::Isolation::kReadCommitted);
    if (again.ok()) ends = std::move(again);
  }
  auto consumer = log.NewConsumer({});
  if (!consumer.ok()) return consumer.status();
  std::vector<internal::log::TopicPartitionOffset> assignment;
  for (int32_t p = 0; p < partitions; ++p) assignment.push_back({{topic, p}, 0});
  if (absl::Status s = (*consumer)->Assign(assignment); !s.ok()) return s;
  std::vector<int64_t> next(static_cast<size_t>(partitions), 0);
  std::vector<Record> records;
  auto done = [&] {
    for (int32_t p = 0; p < partitions; ++p) {
      int64_t end = (*ends)[static_cast<size_t>(p)];
      if (next[static_cast<size_t>(p)] >= end) continue;
      absl::StatusOr<int64_t> position = (*consumer)->Position({topic, p});
      if (position.ok() && *position >= end) continue;
      return false;
    }
    return true;
  };
  // An end offset can sit past transaction markers no record reaches; a quiet stretch then ends
  // the read (all records below the end have been fetched by then).
  absl::Time last_record = absl::Now();
  while (!done()) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("reading ", topic, ": ", records.size(), " records by the deadline"));
    }
    if (absl::Now() - last_record > absl::Seconds(3)) break;
    auto batch = (*consumer)->Poll(10000, absl::Milliseconds(100));
    if (!batch.ok()) continue;
    if (!batch->empty()) last_record = absl::Now();
    for (Record& r : *batch) {
      if (r.offset >= (*ends)[static_cast<size_t>(r.partition)]) continue;
      next[static_cast<size_t>(r.partition)] = r.offset + 1;
      records.push_back(std::move(r));
    }
  }
  (void)(*consumer)->Close();
  return records;
}

std::string InvariantReport::Summary() const {
  std::string out = absl::StrCat("results=", results, " (duplicates ", duplicate_results,
                                 ") events=", events, " snapshots=", snapshots,
                                 " aggregates=", aggregates, " violations=", violation_count);
  if (!read_error.empty()) absl::StrAppend(&out, "\nread error: ", read_error);
  for (const std::string& v : violations) absl::StrAppend(&out, "\n  ", v);
  if (violation_count > violations.size()) {
    absl::StrAppend(&out, "\n  ... and ", violation_count - violations.size(), " more");
  }
  return out;
}

namespace {

std::string Where(const Record& r) {
  return absl::StrCat(r.topic, "/", r.partition, "@", r.offset);
}

std::string PositionsOf(const v1::CommandResult& r) {
  std::vector<std::string> out;
  for (const v1::Position& p : r.event_positions()) {
    out.push_back(absl::StrCat(p.partition(), "@", p.offset()));
  }
  return absl::StrJoin(out, ",");
}

}  // namespace

InvariantReport CheckInvariants(internal::log::Log& log, const internal::AggregateTopics& topics,
                                int32_t partitions, const std::set<std::string>& command_ids,
                                const std::map<std::string, v1::CommandResult::Outcome>* model) {
  InvariantReport report;
  auto violate = [&report](std::string message) {
    ++report.violation_count;
    if (report.violations.size() < 50) report.violations.push_back(std::move(message));
  };
  auto results = ReadTopic(log, topics.results, partitions, absl::Seconds(120));
  auto events = ReadTopic(log, topics.events, partitions, absl::Seconds(120));
  auto snapshots = ReadTopic(log, topics.snapshots, partitions, absl::Seconds(120));
  for (const auto* read : {&results, &events, &snapshots}) {
    if (!read->ok()) {
      report.read_error = read->status().ToString();
      return report;
    }
  }
  report.results = results->size();
  report.events = events->size();
  report.snapshots = snapshots->size();

  // Results by command id, in log order.
  std::map<std::string, std::vector<std::pair<const Record*, v1::CommandResult>>> by_id;
  for (const Record& r : *results) {
    v1::CommandResult result;
    if (!result.ParseFromString(r.value)) {
      violate(absl::StrCat("unparseable result at ", Where(r)));
      continue;
    }
    by_id[result.command_id()].emplace_back(&r, std::move(result));
  }
  // a.
  for (const std::string& id : command_ids) {
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      violate(absl::StrCat("a: command ", id, " has no result"));
      continue;
    }
    const auto& [first_record, first] = it->second.front();
    for (size_t i = 1; i < it->second.size(); ++i) {
      ++report.duplicate_results;
      const auto& [record, other] = it->second[i];
      if (other.outcome() != first.outcome() || other.code() != first.code() ||
          other.version() != first.version() || other.event_count() != first.event_count() ||
          PositionsOf(other) != PositionsOf(first)) {
        violate(absl::StrCat("a: results of ", id, " disagree: ", Where(*first_record), " ",
                             v1::CommandResult::Outcome_Name(first.outcome()), " v",
                             first.version(), " [", PositionsOf(first), "] vs ", Where(*record),
                             " ", v1::CommandResult::Outcome_Name(other.outcome()), " v",
                             other.version(), " [", PositionsOf(other), "]"));
      }
    }
  }
  for (const auto& [id, list] : by_id) {
    if (!command_ids.contains(id)) {
      violate(absl::StrCat("a: result for a command never produced: '", id, "' at ",
                           Where(*list.front().first)));
    }
  }

  // Events by aggregate (log order) and by command id.
  struct EventAt {
    const Record* record;
    v1::EventEnvelope event;
  };
  std::map<std::string, std::vector<EventAt>> by_aggregate;
  std::map<std::string, std::vector<const Record*>> events_by_command;
  std::map<std::pair<int32_t, int64_t>, std::string> event_command_at;
  for (const Record& r : *events) {
    v1::EventEnvelope event;
    if (!event.ParseFromString(r.value)) {
      violate(absl::StrCat("unparseable event at ", Where(r)));
      continue;
    }
    events_by_command[event.command_id()].push_back(&r);
    event_command_at[{r.partition, r.offset}] = event.command_id();
    by_aggregate[event.aggregate_id()].push_back({&r, std::move(event)});
  }
  report.aggregates = by_aggregate.size();

  // b. and the folds for c.
  AggregateDefinition definition = bank::AccountDefinition();
  std::map<std::string, std::vector<std::string>> prefix_states;  // serialized fold after event i
  for (auto& [aggregate, list] : by_aggregate) {
    std::stable_sort(list.begin(), list.end(), [](const EventAt& x, const EventAt& y) {
      return std::pair(x.record->partition, x.record->offset) <
             std::pair(y.record->partition, y.record->offset);
    });
    if (list.front().record->partition != list.back().record->partition) {
      violate(absl::StrCat("b: events of ", aggregate, " span partitions ",
                           list.front().record->partition, " and ", list.back().record->partition));
    }
    std::unique_ptr<google::protobuf::Message> state = definition.NewState();
    std::vector<std::string>& prefixes = prefix_states[aggregate];
    bool reported = false;
    for (size_t i = 0; i < list.size(); ++i) {
      int64_t expected = static_cast<int64_t>(i) + 1;
      if (list[i].event.version() != expected && !reported) {
        reported = true;  // one per aggregate: everything after a gap is off by the same amount
        violate(absl::StrCat("b: ", aggregate, ": event at ", Where(*list[i].record), " (command ",
                             list[i].event.command_id(), ") has version ", list[i].event.version(),
                             ", expected ", expected,
                             i > 0 ? absl::StrCat("; previous at ", Where(*list[i - 1].record),
                                                  " command ", list[i - 1].event.command_id())
                                   : std::string()));
      }
      if (absl::Status s = definition.Apply(*state, list[i].event.payload()); !s.ok()) {
        violate(absl::StrCat("c: ", aggregate, ": event at ", Where(*list[i].record),
                             " does not apply: ", s.ToString()));
      }
      prefixes.push_back(state->SerializeAsString());
    }
  }

  // c. Every snapshot equals the fold of the events up to its version; the latest one is at
  // the aggregate's last version.
  std::map<std::string, std::pair<const Record*, int64_t>> latest;
  for (const Record& r : *snapshots) {
    v1::Snapshot snapshot;
    if (!snapshot.ParseFromString(r.value)) {
      violate(absl::StrCat("unparseable snapshot at ", Where(r)));
      continue;
    }
    const std::string& aggregate = snapshot.aggregate_id();
    auto prefixes = prefix_states.find(aggregate);
    if (prefixes == prefix_states.end()) {
      violate(
          absl::StrCat("c: snapshot of ", aggregate, " at ", Where(r), " but it has no events"));
      continue;
    }
    int64_t v = snapshot.version();
    if (v < 1 || v > static_cast<int64_t>(prefixes->second.size())) {
      violate(absl::StrCat("c: snapshot of ", aggregate, " at ", Where(r), " has version ", v,
                           " but there are ", prefixes->second.size(), " events"));
      continue;
    }
    std::unique_ptr<google::protobuf::Message> state = definition.NewState();
    if (!snapshot.state().UnpackTo(state.get()) ||
        state->SerializeAsString() != prefixes->second[static_cast<size_t>(v - 1)]) {
      violate(absl::StrCat("c: snapshot of ", aggregate, " at ", Where(r), " version ", v,
                           " differs from the fold of its first ", v, " events"));
    }
    auto& l = latest[aggregate];
    if (l.first == nullptr || v >= l.second) l = {&r, v};
  }
  for (const auto& [aggregate, prefixes] : prefix_states) {
    auto it = latest.find(aggregate);
    if (it == latest.end()) {
      violate(absl::StrCat("c: ", aggregate, " has ", prefixes.size(), " events but no snapshot"));
    } else if (it->second.second != static_cast<int64_t>(prefixes.size())) {
      violate(absl::StrCat("c: latest snapshot of ", aggregate, " (", Where(*it->second.first),
                           ") is at version ", it->second.second, ", last event is version ",
                           prefixes.size()));
    }
  }

  // d.
  for (const auto& [id, list] : by_id) {
    const v1::CommandResult& result = list.front().second;
    auto evs = events_by_command.find(id);
    size_t count = evs == events_by_command.end() ? 0 : evs->second.size();
    if (result.outcome() != v1::CommandResult::ACCEPTED) {
      if (count > 0) {
        violate(absl::StrCat("d: ", id, " is ", v1::CommandResult::Outcome_Name(result.outcome()),
                             " (", Where(*list.front().first), ") but has ", count,
                             " event(s), first at ", Where(*evs->second.front())));
      }
      continue;
    }
    if (static_cast<size_t>(result.event_count()) != count) {
      violate(absl::StrCat("d: ", id, " ACCEPTED with event_count ", result.event_count(), " (",
                           Where(*list.front().first), ") but ", count, " event(s) carry its id"));
    }
    for (const v1::Position& p : result.event_positions()) {
      if (p.topic() != topics.events) {
        violate(absl::StrCat("d: ", id, " points at an event in topic '", p.topic(), "'"));
      }
      auto at = event_command_at.find({p.partition(), p.offset()});
      if (at == event_command_at.end() || at->second != id) {
        violate(absl::StrCat("d: ", id, " points at event ", p.partition(), "@", p.offset(),
                             " which is ",
                             at == event_command_at.end() ? std::string("not a committed event")
                                                          : "of command " + at->second));
      }
    }
  }

  // e.
  for (const auto& [id, records] : events_by_command) {
    auto it = by_id.find(id);
    if (it == by_id.end() || it->second.front().second.outcome() != v1::CommandResult::ACCEPTED) {
      violate(absl::StrCat("e: event at ", Where(*records.front()), " of command ", id,
                           it == by_id.end() ? " which has no result" : " which is not ACCEPTED"));
    }
  }

  // f.
  if (model != nullptr) {
    for (const auto& [id, outcome] : *model) {
      auto it = by_id.find(id);
      if (it == by_id.end()) continue;  // reported under a.
      if (it->second.front().second.outcome() != outcome) {
        violate(absl::StrCat("f: ", id, " is ",
                             v1::CommandResult::Outcome_Name(it->second.front().second.outcome()),
                             " at ", Where(*it->second.front().first), ", the model says ",
                             v1::CommandResult::Outcome_Name(outcome)));
      }
    }
  }
  return report;
}

}  // namespace leftfold::testing::fault
