// leftfold_projector_bench: projector events/s into RocksDB and PostgreSQL views, against a
// consume-only loop over the same topic (the ceiling the transport allows).
//
//   leftfold_projector_bench [--brokers=H:P] [--pg=URI [--pg-exec]] [--events=N] [--batch=N]
//
// Without --brokers it runs on the embedded log in a temp directory. Each projector folds every
// Deposited event into a per-account balance row (read-modify-write) and a global counter row,
// then the bench checks the counter equals N (so a fast-but-wrong run cannot report). The
// PostgreSQL projector upserts one row per event, pipelined (SqlView::Queue); --pg-exec adds a
// run with SqlView::Exec (a round trip per event). --batch sets every batch size; by default each
// store gets the projector's default (kDefaultViewBatch, kDefaultSqlBatch).
#include <sys/resource.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "bank/v1/bank.pb.h"
#include "leftfold/logging.h"
#include "log/log.h"
#include "projection/runner.h"
#include "store/pg_store.h"
#include "store/rocks_view_store.h"
#include "topology/topics.h"

namespace lf = leftfold;
namespace ll = leftfold::internal::log;
namespace lp = leftfold::internal::projection;
namespace ls = leftfold::internal::store;

namespace {

struct Args {
  std::string brokers;
  std::string pg;
  int events = 200000;
  size_t batch = 0;  // 0: the projector's defaults (consume-only uses the RocksDB one)
  bool pg_exec = false;
};

lf::Projector RocksCounter(const std::string& name, const std::string& type) {
  return lf::Projector(name).From(type).On<bank::v1::Deposited>(
      [](const lf::EventContext& ctx, const bank::v1::Deposited& e, lf::View& view) {
        bank::v1::Account row;
        absl::Status s = view.Get(ctx.aggregate_id(), &row);
        if (!s.ok() && !absl::IsNotFound(s)) return s;
        row.set_balance(row.balance() + e.amount());
        if (s = view.Put(ctx.aggregate_id(), row); !s.ok()) return s;
        bank::v1::Account total;
        s = view.Get("total", &total);
        if (!s.ok() && !absl::IsNotFound(s)) return s;
        total.set_balance(total.balance() + 1);
        return view.Put("total", total);
      });
}

// `pipelined`: the handler Queue()s its upsert (sent without waiting for the result); else it
// Exec()s it (one round trip per event).
lf::Projector PgCounter(const std::string& name, const std::string& type, const std::string& table,
                        bool pipelined) {
  return lf::Projector(name)
      .From(type)
      .Migrate([table](lf::SqlView& sql) {
        return sql
            .Exec(absl::StrCat("CREATE TABLE IF NOT EXISTS ", table,
                               " (id text PRIMARY KEY, balance bigint NOT NULL, events bigint "
                               "NOT NULL)"))
            .status();
      })
      .On<bank::v1::Deposited>([table, pipelined](const lf::EventContext& ctx,
                                                  const bank::v1::Deposited& e, lf::SqlView& sql) {
        const std::string upsert =
            absl::StrCat("INSERT INTO ", table,
                         " VALUES ($1, $2, 1) ON CONFLICT (id) DO UPDATE SET balance = ", table,
                         ".balance + EXCLUDED.balance, events = ", table, ".events + 1");
        if (pipelined) return sql.Queue(upsert, {ctx.aggregate_id(), e.amount()});
        return sql.Exec(upsert, {ctx.aggregate_id(), e.amount()}).status();
      });
}

double Rate(int n, absl::Duration d) { return n / absl::ToDoubleSeconds(d); }

// CPU seconds of the whole process (every thread: poller, RocksDB, librdkafka), so a phase's cost
// can be compared when other load on the machine makes its wall time noisy.
double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// "cpu=<seconds per 100k events>" for a phase that started at `cpu_start`; `*per_100k` gets the
// number.
std::string CpuPer100k(double cpu_start, int n, double* per_100k = nullptr) {
  const double v = (CpuSeconds() - cpu_start) * 100000.0 / n;
  if (per_100k != nullptr) *per_100k = v;
  return absl::StrCat("cpu=", absl::SixDigits(v), "s/100k");
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--brokers="))
      args.brokers = std::string(a);
    else if (absl::ConsumePrefix(&a, "--pg="))
      args.pg = std::string(a);
    else if (absl::ConsumePrefix(&a, "--events="))
      (void)absl::SimpleAtoi(a, &args.events);
    else if (absl::ConsumePrefix(&a, "--batch="))
      (void)absl::SimpleAtoi(a, &args.batch);
    else if (a == "--pg-exec")
      args.pg_exec = true;
  }
  lf::SetLogLevel(lf::LogLevel::kWarning);
  const size_t rocks_batch = args.batch != 0 ? args.batch : lp::kDefaultViewBatch;
  const size_t sql_batch = args.batch != 0 ? args.batch : lp::kDefaultSqlBatch;
  const std::string dir =
      (std::filesystem::temp_directory_path() / absl::StrCat("projector-bench-", getpid()))
          .string();
  auto log = ll::OpenLog({.brokers = args.brokers, .embedded_dir = dir + "/log"});
  if (!log.ok()) {
    std::fprintf(stderr, "%s\n", log.status().ToString().c_str());
    return 1;
  }
  const std::string type = absl::StrCat("bench.account", getpid());
  const std::string topic = lf::internal::TopicsFor("", type).events;
  if (auto n = lf::internal::EnsureTopics((*log)->admin(), lf::internal::TopicsFor("", type), 4);
      !n.ok()) {
    std::fprintf(stderr, "%s\n", n.status().ToString().c_str());
    return 1;
  }

  // Produce.
  std::vector<lf::v1::Position> last(4);
  {
    auto producer = (*log)->NewProducer({.kafka_properties = {{"linger.ms", "5"}}});
    if (!producer.ok()) return 1;
    absl::Time start = absl::Now();
    for (int i = 0; i < args.events; ++i) {
      lf::v1::EventEnvelope e;
      std::string id = absl::StrCat("acct-", i % 1000);
      e.set_aggregate_type(type);
      e.set_aggregate_id(id);
      e.set_version(i / 1000 + 1);
      bank::v1::Deposited d;
      d.set_amount(1);
      e.mutable_payload()->PackFrom(d);
      absl::Status s =
          (*producer)->Produce({.topic = topic, .key = id, .value = e.SerializeAsString()},
                               [&last](absl::StatusOr<ll::TopicPartitionOffset> r) {
                                 if (!r.ok()) return;
                                 lf::v1::Position& p = last[r->tp.partition];
                                 if (r->offset >= p.offset()) {
                                   p.set_topic(r->tp.topic);
                                   p.set_partition(r->tp.partition);
                                   p.set_offset(r->offset);
                                 }
                               });
      if (!s.ok()) {
        std::fprintf(stderr, "produce: %s\n", s.ToString().c_str());
        return 1;
      }
    }
    (void)(*producer)->Flush(absl::Seconds(120));
    std::printf("backend=%s events=%d batch=%zu (pg %zu)\n", std::string((*log)->backend()).c_str(),
                args.events, rocks_batch, sql_batch);
    std::printf("produce         %10.0f events/s\n", Rate(args.events, absl::Now() - start));
  }

  // Consume only: the same records, decoded as envelopes, no view.
  double consume_rate = 0, consume_cpu = 0;
  {
    auto consumer = (*log)->NewConsumer({.group_id = absl::StrCat("consume-only-", getpid())});
    if (!consumer.ok() || !(*consumer)->Subscribe({topic}, {}).ok()) return 1;
    absl::Time start = absl::Now();
    const double cpu = CpuSeconds();
    int n = 0;
    while (n < args.events && absl::Now() - start < absl::Minutes(5)) {
      auto batch = (*consumer)->Poll(rocks_batch, absl::Milliseconds(100));
      if (!batch.ok()) continue;
      for (const ll::Record& r : *batch) {
        lf::v1::EventEnvelope e;
        if (e.ParseFromString(r.value)) ++n;
      }
    }
    consume_rate = Rate(n, absl::Now() - start);
    std::printf("consume-only    %10.0f events/s  (%s)\n", consume_rate,
                CpuPer100k(cpu, n, &consume_cpu).c_str());
    (void)(*consumer)->Close();
  }

  std::vector<lf::v1::Position> token;
  for (const auto& p : last) {
    if (!p.topic().empty()) token.push_back(p);
  }
  // RocksDB view.
  {
    const std::string name = absl::StrCat("bench_rocks_", getpid());
    auto store = ls::RocksViewStore::Open(dir + "/view", name);
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
      return 1;
    }
    lp::Runner runner(**log, RocksCounter(name, type), **store, {.max_batch = rocks_batch});
    absl::Time start = absl::Now();
    const double cpu = CpuSeconds();
    if (!runner.Start().ok()) return 1;
    absl::Status s = runner.WaitFor(token, absl::Now() + absl::Minutes(10));
    absl::Duration took = absl::Now() - start;
    auto total = (*store)->committed().Get<bank::v1::Account>("total");
    double rocks_cpu = 0;
    const std::string cpu_text = CpuPer100k(cpu, args.events, &rocks_cpu);
    std::printf("projector/rocks %10.0f events/s  (%s, counter=%lld, %s)\n",
                Rate(args.events, took), s.ToString().c_str(),
                total.ok() ? static_cast<long long>(total->balance()) : -1, cpu_text.c_str());
    // The issue-6 target: projector events/s >= 50% of consume-only's, in the same run.
    std::printf("ratio rocks/consume-only  events/s %.0f%%  cpu/event %.0f%%\n",
                100.0 * Rate(args.events, took) / consume_rate, 100.0 * consume_cpu / rocks_cpu);
    (void)runner.Stop();
  }
  // PostgreSQL view: pipelined (Queue), and with --pg-exec also one round trip per event (Exec).
  for (bool pipelined : {true, false}) {
    if (args.pg.empty() || (!pipelined && !args.pg_exec)) continue;
    const std::string name = absl::StrCat("bench_pg_", pipelined ? "q" : "x", getpid());
    lf::Projector p = PgCounter(name, type, name, pipelined);
    auto store = ls::PgStore::Open(args.pg, name, p.migration());
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
      return 1;
    }
    lp::Runner runner(**log, p, **store, {.max_batch = sql_batch});
    absl::Time start = absl::Now();
    const double cpu = CpuSeconds();  // this process only: the PostgreSQL server is not in it
    if (!runner.Start().ok()) return 1;
    absl::Status s = runner.WaitFor(token, absl::Now() + absl::Minutes(10));
    absl::Duration took = absl::Now() - start;
    const std::string client_cpu = CpuPer100k(cpu, args.events);
    // The table's own count, read back: a fast-but-wrong run cannot report.
    long long counted = -1;
    if (auto batch = (*store)->Begin(); batch.ok()) {
      auto r = (*batch)->sql()->Exec(absl::StrCat("SELECT SUM(events) FROM ", name));
      if (r.ok() && !r->rows.empty() && r->rows[0][0])
        (void)absl::SimpleAtoi(*r->rows[0][0], &counted);
    }
    std::printf("projector/pg%s %10.0f events/s  (%s, counter=%lld, client %s)\n",
                pipelined ? "   " : "-x ", Rate(args.events, took), s.ToString().c_str(), counted,
                client_cpu.c_str());
    (void)runner.Stop();
  }
  std::filesystem::remove_all(dir);
  return 0;
}
