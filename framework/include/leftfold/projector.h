// Projectors: events in, view rows out; the framework keeps the checkpoint.
//
// A projector is one declarative definition: a name (also the view's name, and the consumer
// group id after the transport's topic prefix), the aggregate types whose events it reads, and
// one handler per event type it cares about. Events of other types are skipped.
//
//   leftfold::Projector BalancesProjector() {
//     return leftfold::Projector("account_balances")
//         .From("bank.account")   // or .From(AccountAggregate())
//         .On<bank::v1::Deposited>([](const leftfold::EventContext& ctx,
//                                     const bank::v1::Deposited& e,
//                                     leftfold::View& view) -> absl::Status {
//           bank::v1::Account row;
//           absl::Status s = view.Get(ctx.aggregate_id(), &row);
//           if (!s.ok() && !absl::IsNotFound(s)) return s;
//           row.set_balance(row.balance() + e.amount());
//           return view.Put(ctx.aggregate_id(), row);
//         });
//   }
//
//   // Run it (RocksDB view store under options.store_dir):
//   auto runtime = leftfold::ProjectorRuntime::Start(transport, BalancesProjector(), {});
//
// Handler shapes (the return type may be absl::Status or void):
//   On<E>:            (const EventContext&, const E&, View&)      RocksDB view store
//   On<E>:            (const EventContext&, const E&, SqlView&)   PostgreSQL store
//   OnState<State>:   (const EventContext&, const State&, View&)  state projection over snapshots
// A projector is either all-View or all-SqlView. SQL projectors declare their schema with
// .Migrate(fn(SqlView&) -> absl::Status), run once at start-up.
//
// Handlers must be pure functions of (event, view): the runtime may run one again after a crash
// or a failed batch, and only the committed view counts. An error status or a thrown exception
// makes the event "poison": the partition halts (default) or the event goes to the dead-letter
// topic `<name>.dlq` (ProjectorOptions::dead_letter).
//
// Projector is a value (copyable, cheap: handlers are shared); build it once, then hand it to a
// runtime or to testing::ProjectorFixture. Thread-safe to read once built.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/any.pb.h"
#include "leftfold/types.h"
#include "leftfold/v1/envelope.pb.h"
#include "leftfold/view.h"

namespace leftfold {

class Transport;

// What a handler knows about the event besides its payload. Valid for the handler call only.
class EventContext {
 public:
  // `envelope` must outlive the context. For a snapshot, the envelope is built from it (no
  // command id).
  EventContext(const v1::EventEnvelope& envelope, v1::Position position);
  // Borrows `position` too (no copy; the runtime's per-event path): it must outlive the context.
  EventContext(const v1::EventEnvelope& envelope, const v1::Position* position);
  // A copy owns a copy of the position (it may outlive the borrowed one).
  EventContext(const EventContext& other);
  EventContext& operator=(const EventContext& other);

  const std::string& aggregate_type() const { return envelope_->aggregate_type(); }
  const AggregateId& aggregate_id() const { return aggregate_id_; }
  Version version() const { return Version(envelope_->version()); }
  CommandId command_id() const { return CommandId(envelope_->command_id()); }
  absl::Time timestamp() const;
  // Where the event is: topic, partition, offset.
  const v1::Position& position() const { return *position_; }
  // Metadata, correlation id.
  const v1::EventEnvelope& envelope() const { return *envelope_; }

 private:
  const v1::EventEnvelope* envelope_;
  AggregateId aggregate_id_;
  v1::Position owned_position_;             // when constructed with a Position by value
  const v1::Position* position_ = nullptr;  // &owned_position_ or the borrowed one
};

class Projector {
 public:
  enum class StoreKind { kUnset, kView, kSql };
  // Type-erased handler: one of view/sql is non-null, matching store_kind().
  using Handler = std::function<absl::Status(const EventContext&, const google::protobuf::Any&,
                                             View*, SqlView*)>;
  using Migration = std::function<absl::Status(SqlView&)>;

  explicit Projector(std::string name);

  // Reads the events of this aggregate type (may be called for several types).
  Projector& From(std::string aggregate_type);
  // Anything with a type() (leftfold::Aggregate<State>, leftfold::AggregateDefinition).
  template <typename Definition>
  auto From(const Definition& aggregate) -> decltype(aggregate.type(), std::declval<Projector&>()) {
    return From(std::string(aggregate.type()));
  }
  // Reads the snapshots (latest states) of this aggregate type; pair with OnState.
  Projector& FromSnapshots(std::string aggregate_type);

  template <typename E, typename Fn>
  Projector& On(Fn fn) {
    return AddHandler(E::descriptor()->full_name(), Wrap<E>(std::move(fn)), /*state=*/false);
  }
  template <typename State, typename Fn>
  Projector& OnState(Fn fn) {
    return AddHandler(State::descriptor()->full_name(), Wrap<State>(std::move(fn)),
                      /*state=*/true);
  }
  // SQL store only: creates or upgrades the schema, in its own transaction, at start-up.
  Projector& Migrate(Migration migration);

  // For the runtime and the fixture.
  const std::string& name() const { return name_; }
  const std::vector<std::string>& event_sources() const { return event_sources_; }
  const std::vector<std::string>& snapshot_sources() const { return snapshot_sources_; }
  StoreKind store_kind() const { return kind_; }
  const Migration& migration() const { return migration_; }
  // INVALID_ARGUMENT naming the problem: no name, no source, no handler, mixed View/SqlView, ...
  absl::Status Validate() const;
  // Runs the handler for the payload's type; OK (skipped) when there is none. Catches exceptions
  // (they become INTERNAL). `state` picks the OnState handlers.
  absl::Status Dispatch(const EventContext& ctx, const google::protobuf::Any& payload, bool state,
                        View* view, SqlView* sql) const;
  bool Handles(absl::string_view type_name, bool state) const;

 private:
  template <typename M, typename Fn>
  std::pair<StoreKind, Handler> Wrap(Fn fn) {
    if constexpr (std::is_invocable_v<Fn&, const EventContext&, const M&, View&>) {
      return {StoreKind::kView,
              [fn = std::move(fn)](const EventContext& ctx, const google::protobuf::Any& payload,
                                   View* view, SqlView*) mutable -> absl::Status {
                M msg;
                if (!payload.UnpackTo(&msg)) return UndecodablePayload(payload);
                return Call(fn, ctx, msg, *view);
              }};
    } else {
      static_assert(std::is_invocable_v<Fn&, const EventContext&, const M&, SqlView&>,
                    "a projector handler takes (const EventContext&, const E&, View&) or "
                    "(const EventContext&, const E&, SqlView&)");
      return {StoreKind::kSql,
              [fn = std::move(fn)](const EventContext& ctx, const google::protobuf::Any& payload,
                                   View*, SqlView* sql) mutable -> absl::Status {
                M msg;
                if (!payload.UnpackTo(&msg)) return UndecodablePayload(payload);
                return Call(fn, ctx, msg, *sql);
              }};
    }
  }
  template <typename Fn, typename M, typename Store>
  static absl::Status Call(Fn& fn, const EventContext& ctx, const M& msg, Store& store) {
    if constexpr (std::is_void_v<
                      std::invoke_result_t<Fn&, const EventContext&, const M&, Store&>>) {
      fn(ctx, msg, store);
      return absl::OkStatus();
    } else {
      return fn(ctx, msg, store);
    }
  }
  static absl::Status UndecodablePayload(const google::protobuf::Any& payload);
  Projector& AddHandler(const std::string& type, std::pair<StoreKind, Handler> handler, bool state);

  std::string name_;
  std::vector<std::string> event_sources_;
  std::vector<std::string> snapshot_sources_;
  StoreKind kind_ = StoreKind::kUnset;
  // Keyed by message full name (found by string_view: no allocation per event). Shared: copies
  // of a Projector are cheap.
  using Handlers = std::map<std::string, Handler, std::less<>>;
  std::shared_ptr<Handlers> event_handlers_;
  std::shared_ptr<Handlers> state_handlers_;
  Migration migration_;
  std::vector<std::string> errors_;
};

struct ProjectorOptions {
  // RocksDB view store directory (View projectors). Default: "leftfold-data/views/<name>".
  std::string store_dir;
  // PostgreSQL connection URI (SqlView projectors), e.g. "postgresql://user@host:5432/db".
  std::string postgres_uri;
  // Skip poison events into the topic "<prefix><name>.dlq" instead of halting the partition.
  // Default: false (halt, with an error naming the position).
  bool dead_letter = false;
  // Most events per batch (one store transaction; a poll returns what is there, so batches are
  // this big only when the projector is behind). Default (0): 5000 for a RocksDB view, where a
  // larger batch writes a hot row once per batch instead of once per event; 250 for PostgreSQL,
  // where a transaction that updates the same row many times slows down (each update walks the
  // row's versions, which only the commit lets PostgreSQL prune).
  size_t max_batch = 0;
  // Longest wait for new events before an empty poll. Default: 100ms.
  absl::Duration poll_timeout = absl::Milliseconds(100);
  // A stable name of this instance (e.g. the pod name; like ProcessorOptions::instance_id). Set,
  // the projector is a static Kafka group member ("group.instance.id" =
  // "<topic prefix><name>-<instance_id>"):
  // a restart with the same id gets its partitions back at once instead of after the session
  // timeout; a stopped one keeps them, unprojected, until that timeout. Two live instances must
  // never share an id. Default: empty (a dynamic member). The embedded log ignores it.
  std::string instance_id;
};

struct PartitionLag {
  v1::Position checkpoint;  // offset = next offset to apply
  int64_t end_offset = 0;   // last stable offset of the partition
  int64_t lag = 0;          // end_offset - checkpoint
  absl::Status halted;      // non-OK when the partition stopped on a poison event
};

// Where a view rebuild stands (ProjectorRuntime::Rebuild). "Events" count offsets: a
// transaction marker counts as one, so the numbers are close to, not exactly, events.
struct RebuildProgress {
  int64_t events_done = 0;   // applied into the shadow view (resumed work included); monotone
  int64_t events_total = 0;  // the live view's checkpoints the shadow must reach; grows while the
                             // live view moves
  double events_per_second = 0;               // applied by this run
  absl::Duration eta = absl::ZeroDuration();  // InfiniteDuration() before a rate is known
  bool swapped = false;                       // the last report: the shadow now serves as the view
  double fraction() const {
    return events_total <= 0 ? 1.0 : static_cast<double>(events_done) / events_total;
  }
};

namespace internal::projection {
class Runner;
}  // namespace internal::projection
namespace internal::store {
class ProjectionStore;
}  // namespace internal::store

// A running projector: a consumer group over its sources, writing the view. Owned by the caller;
// Stop() or the destructor ends it. Thread-safe.
class ProjectorRuntime {
 public:
  static absl::StatusOr<std::unique_ptr<ProjectorRuntime>> Start(
      std::shared_ptr<Transport> transport, Projector projector, ProjectorOptions options = {});
  ~ProjectorRuntime();

  absl::Status Stop();
  // Per assigned partition: checkpoint, end offset, lag, halt reason.
  absl::StatusOr<std::vector<PartitionLag>> Lag() const;
  // Waits until the view has applied every position (its checkpoint is past each offset).
  // DEADLINE_EXCEEDED when `deadline` passes first. Positions on other topics are ignored.
  absl::Status WaitFor(const std::vector<v1::Position>& positions, absl::Time deadline) const;
  // The view (RocksDB store), for queries in this process; nullptr for a SQL projector.
  // The same object before, during and after a Rebuild.
  const View* view() const;

  // Rebuilds the view from offset 0 into a shadow store next to it, while the live view keeps
  // serving and updating, then swaps the shadow in atomically (the runner pauses for the last
  // few events and the swap). Blocks until done; `on_progress` is called on this thread after
  // each shadow batch and once more with swapped = true. A rebuild interrupted by a crash or an
  // error resumes from the shadow's own checkpoints at the next call. UNIMPLEMENTED for a SQL
  // projector; FAILED_PRECONDITION while another rebuild of this view runs.
  absl::Status Rebuild(std::function<void(const RebuildProgress&)> on_progress = nullptr);
  // True when a rebuild was started and not finished (the next Rebuild resumes it).
  bool RebuildPending() const;

  // For the query service.
  internal::projection::Runner& runner_internal() const { return *runner_; }

 private:
  ProjectorRuntime() = default;
  std::shared_ptr<Transport> transport_;
  std::string store_dir_;  // RocksDB views only
  std::unique_ptr<internal::store::ProjectionStore> store_;
  std::unique_ptr<internal::projection::Runner> runner_;
};

}  // namespace leftfold
