#include "projection/rebuilder.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "leftfold/logging.h"

namespace leftfold::internal::projection {
namespace {

constexpr char kComponent[] = "projector";

int64_t Sum(const store::Checkpoints& cps, const store::Checkpoints& keys) {
  int64_t sum = 0;
  for (const auto& [tp, target] : keys) {
    auto it = cps.find(tp);
    if (it != cps.end()) sum += std::min(it->second, target);
  }
  return sum;
}

int64_t Total(const store::Checkpoints& targets) {
  int64_t sum = 0;
  for (const auto& [tp, target] : targets) sum += target;
  return sum;
}

}  // namespace

Rebuilder::Rebuilder(log::Log& log, Runner& runner, store::RocksViewStore& live)
    : log_(log), runner_(runner), live_(live) {}

store::Checkpoints Rebuilder::Targets() const {
  store::Checkpoints out;
  const std::vector<std::string>& topics = runner_.topics();
  for (const auto& [tp, offset] : live_.watermarks().Snapshot()) {
    if (offset <= 0) continue;
    if (std::find(topics.begin(), topics.end(), tp.topic) == topics.end()) continue;
    out[tp] = offset;
  }
  return out;
}

void Rebuilder::Report(const ProgressFn& on_progress, const store::Checkpoints& shadow_cps,
                       const store::Checkpoints& targets, bool swapped, bool force) {
  RebuildProgress p;
  p.events_total = Total(targets);
  p.events_done = std::max(last_done_, Sum(shadow_cps, targets));
  last_done_ = p.events_done;
  const double seconds = absl::ToDoubleSeconds(absl::Now() - started_);
  p.events_per_second = seconds > 0 ? applied_this_run_ / seconds : 0;
  const int64_t remaining = std::max<int64_t>(p.events_total - p.events_done, 0);
  if (remaining == 0) {
    p.eta = absl::ZeroDuration();
  } else if (p.events_per_second > 0) {
    p.eta = absl::Seconds(remaining / p.events_per_second);
  } else {
    p.eta = absl::InfiniteDuration();
  }
  p.swapped = swapped;
  if (on_progress) on_progress(p);
  if (force || absl::Now() - last_log_ >= absl::Seconds(1)) {
    last_log_ = absl::Now();
    LogInfo(kComponent, swapped ? "rebuild swapped in" : "rebuild progress",
            {{"projector", runner_.projector().name()},
             {"done", absl::StrCat(p.events_done)},
             {"total", absl::StrCat(p.events_total)},
             {"events_per_second", absl::StrFormat("%.0f", p.events_per_second)},
             {"eta", absl::FormatDuration(p.eta)}});
  }
}

absl::Status Rebuilder::Run(const ProgressFn& on_progress) {
  started_ = absl::Now();
  const std::string& name = runner_.projector().name();
  const bool resumed = store::RocksViewStore::HasShadow(live_.dir());
  absl::StatusOr<std::unique_ptr<store::RocksViewStore>> shadow =
      store::RocksViewStore::OpenShadow(live_.dir(), name);
  if (!shadow.ok()) return shadow.status();
  absl::StatusOr<std::unique_ptr<log::Consumer>> consumer = log_.NewConsumer({
      .group_id = "",
      .isolation = log::Isolation::kReadCommitted,
      .start_from_earliest = true,
  });
  if (!consumer.ok()) return consumer.status();
  LogInfo(kComponent, resumed ? "rebuild resumed" : "rebuild started",
          {{"projector", name}, {"shadow", (*shadow)->dir()}});
  absl::Status result = [&]() -> absl::Status {
    // Rounds against a moving live view, until what is left fits in one paused batch.
    for (;;) {
      if (cancelled_) return absl::CancelledError("rebuild cancelled");
      store::Checkpoints targets = Targets();
      absl::StatusOr<store::Checkpoints> cps = (*shadow)->LoadCheckpoints();
      if (!cps.ok()) return cps.status();
      Report(on_progress, *cps, targets, false, false);
      if (Total(targets) - Sum(*cps, targets) <=
          static_cast<int64_t>(runner_.options().max_batch)) {
        break;
      }
      if (absl::Status s = CatchUp(**shadow, **consumer, targets, on_progress); !s.ok()) return s;
    }
    return runner_.WhilePaused([&]() -> absl::Status {
      store::Checkpoints targets = Targets();
      if (absl::Status s = CatchUp(**shadow, **consumer, targets, on_progress); !s.ok()) return s;
      absl::StatusOr<store::Checkpoints> cps = (*shadow)->LoadCheckpoints();
      if (!cps.ok()) return cps.status();
      // The swap is only right if the shadow is exactly where the live view is.
      for (const auto& [tp, target] : targets) {
        auto it = cps->find(tp);
        if (it == cps->end() || it->second != target) {
          return absl::InternalError(absl::StrCat(
              "rebuild of ", name, ": shadow checkpoint of ", tp.topic, "/", tp.partition, " is ",
              it == cps->end() ? -1 : it->second, ", live is ", target));
        }
      }
      if (absl::Status s = live_.SwapIn(*std::move(shadow)); !s.ok()) return s;
      Report(on_progress, *cps, targets, true, true);
      return absl::OkStatus();
    });
  }();
  (*consumer)->Close().IgnoreError();
  if (!result.ok()) {
    LogWarning(kComponent, "rebuild stopped; the next rebuild resumes it",
               {{"projector", name}, {"error", result.ToString()}});
  }
  return result;
}

absl::Status Rebuilder::CatchUp(store::RocksViewStore& shadow, log::Consumer& consumer,
                                const store::Checkpoints& targets, const ProgressFn& on_progress) {
  absl::StatusOr<store::Checkpoints> cps = shadow.LoadCheckpoints();
  if (!cps.ok()) return cps.status();
  std::map<log::TopicPartition, int64_t> next;
  std::vector<log::TopicPartitionOffset> assign;
  for (const auto& [tp, target] : targets) {
    auto it = cps->find(tp);
    int64_t from = it == cps->end() ? 0 : it->second;
    if (from >= target) continue;
    next[tp] = from;
    assign.push_back({tp, from});
  }
  if (assign.empty()) return absl::OkStatus();
  if (absl::Status s = consumer.Assign(assign); !s.ok()) return s;
  const RunnerOptions& options = runner_.options();
  while (!next.empty()) {
    if (cancelled_) return absl::CancelledError("rebuild cancelled");
    absl::StatusOr<std::vector<log::Record>> records =
        consumer.Poll(options.max_batch, options.poll_timeout);
    if (!records.ok()) return records.status();
    if (records->empty()) continue;
    std::vector<const log::Record*> todo;
    for (const log::Record& r : *records) {
      log::TopicPartition tp{r.topic, r.partition};
      auto it = next.find(tp);
      if (it == next.end() || r.offset < it->second || r.offset >= targets.at(tp)) continue;
      todo.push_back(&r);
    }
    // As in the runner: a failed event aborts the batch, which is redone without it.
    std::set<size_t> skipped;
    for (;;) {
      absl::StatusOr<std::unique_ptr<store::Batch>> batch = shadow.Begin();
      if (!batch.ok()) return batch.status();
      store::Checkpoints commit;
      int64_t applied = 0;
      size_t failed = todo.size();
      for (size_t i = 0; i < todo.size(); ++i) {
        const log::Record& r = *todo[i];
        if (!skipped.count(i)) {
          if (absl::Status s = runner_.Apply(r, **batch); !s.ok()) {
            // The live runner skipped it into the dead-letter topic already; without dead_letter
            // the live partition halted before it, so no target covers it.
            if (!options.dead_letter) {
              return absl::Status(s.code(), absl::StrCat("rebuild of ", runner_.projector().name(),
                                                         " failed at ", r.topic, "/", r.partition,
                                                         "@", r.offset, ": ", s.message()));
            }
            failed = i;
            break;
          }
          ++applied;
        }
        commit[{r.topic, r.partition}] = r.offset + 1;
      }
      if (failed != todo.size()) {
        skipped.insert(failed);
        continue;
      }
      if (commit.empty()) break;
      if (absl::Status s = (*batch)->Commit(commit); !s.ok()) return s;
      applied_this_run_ += applied;
      for (const auto& [tp, offset] : commit) next[tp] = offset;
      absl::StatusOr<store::Checkpoints> now = shadow.LoadCheckpoints();
      if (!now.ok()) return now.status();
      Report(on_progress, *now, targets, false, false);
      break;
    }
    std::vector<log::TopicPartition> finished;
    for (const auto& [tp, offset] : next) {
      if (offset >= targets.at(tp)) finished.push_back(tp);
    }
    if (!finished.empty()) consumer.Pause(finished).IgnoreError();
    for (const auto& tp : finished) next.erase(tp);
  }
  return absl::OkStatus();
}

}  // namespace leftfold::internal::projection
