// leftfold-projector: runs example projectors as a service of their own, with the ViewQuery
// gRPC service (Get/Scan with consistency tokens, Lag, Rebuild) over their views.
//
//   leftfold-projector --brokers 127.0.0.1:9092 --projector account_balances
//       --projector invoice_list --instance-id "$POD_NAME"
//   leftfold-projector --projector invoices_sql --postgres postgresql://user@host/db
//   leftfold-projector --help
#include <map>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "balances.h"
#include "clicks/clicks.h"
#include "common/grpc_server.h"
#include "common/signals.h"
#include "invoices/invoice_list.h"
#include "invoices/invoices_sql.h"
#include "leftfold/logging.h"
#include "leftfold/projector.h"
#include "leftfold/transport.h"
#include "projection/query_service.h"

namespace {

constexpr char kComponent[] = "projector-service";

std::map<std::string, leftfold::Projector> KnownProjectors() {
  std::map<std::string, leftfold::Projector> known;
  for (leftfold::Projector p :
       {bank::BalancesProjector(), clicks::ClickTotalsProjector(), invoices::InvoiceListProjector(),
        invoices::InvoicesSqlProjector()}) {
    known.emplace(p.name(), p);
  }
  return known;
}

}  // namespace

int main(int argc, char** argv) {
  leftfold::services::BlockTerminationSignals();
  std::map<std::string, leftfold::Projector> known = KnownProjectors();
  std::vector<std::string> names;
  for (const auto& [name, projector] : known) names.push_back(name);

  leftfold::TransportOptions transport_options;
  std::string data_dir = "leftfold-data";
  std::string listen = "127.0.0.1:50052";
  std::string postgres;
  std::vector<std::string> selected;
  bool dead_letter = false;
  std::string instance_id;
  CLI::App app{"leftfold-projector: runs projectors and serves their views (ViewQuery)."};
  app.add_option("--projector", selected,
                 "projector to run (repeatable): " + absl::StrJoin(names, ", "))
      ->required()
      ->check(CLI::IsMember(names));
  app.add_option("--brokers", transport_options.brokers,
                 "Kafka bootstrap servers; empty: the embedded log under --data-dir");
  app.add_option("--data-dir", data_dir, "embedded log (log/) and view stores (views/<name>)")
      ->capture_default_str();
  app.add_option("--listen", listen, "ViewQuery gRPC address")->capture_default_str();
  app.add_option("--postgres", postgres, "PostgreSQL URI for SQL projectors (invoices_sql)");
  app.add_option("--topic-prefix", transport_options.topic_prefix, "prefix of every topic name");
  app.add_flag("--dead-letter", dead_letter,
               "skip poison events into <name>.dlq instead of halting the partition");
  app.add_option("--instance-id", instance_id,
                 "stable name of this instance (e.g. the pod name): on Kafka a restart with the "
                 "same id gets its partitions back at once instead of after the session timeout; "
                 "never give two live instances the same id. Default: none (dynamic member)");
  CLI11_PARSE(app, argc, argv);
  transport_options.embedded_dir = data_dir + "/log";

  auto transport = leftfold::Transport::Open(transport_options);
  if (!transport.ok()) {
    leftfold::LogError(kComponent, "cannot open the log",
                       {{"error", transport.status().ToString()}});
    return 1;
  }
  std::vector<std::unique_ptr<leftfold::ProjectorRuntime>> runtimes;
  leftfold::internal::projection::ViewQueryService queries;
  for (const std::string& name : selected) {
    const leftfold::Projector& projector = known.at(name);
    auto runtime = leftfold::ProjectorRuntime::Start(*transport, projector,
                                                     {.store_dir = data_dir + "/views/" + name,
                                                      .postgres_uri = postgres,
                                                      .dead_letter = dead_letter,
                                                      .instance_id = instance_id});
    if (!runtime.ok()) {
      leftfold::LogError(kComponent, "cannot start projector",
                         {{"projector", name}, {"error", runtime.status().ToString()}});
      return 1;
    }
    queries.AddProjector((*runtime)->runner_internal(), (*runtime)->view());
    queries.AddRebuild(**runtime);
    runtimes.push_back(*std::move(runtime));
  }

  auto server = leftfold::services::StartGrpcServer(listen, {&queries});
  if (!server.ok()) {
    leftfold::LogError(kComponent, "cannot serve", {{"error", server.status().ToString()}});
    return 1;
  }
  leftfold::LogInfo(kComponent, "ready",
                    {{"listen", listen},
                     {"backend", (*transport)->backend()},
                     {"projectors", absl::StrJoin(selected, ",")}});
  int sig = leftfold::services::WaitForTerminationSignal();
  leftfold::LogInfo(kComponent, "stopping", {{"signal", absl::StrCat(sig)}});
  (*server)->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  int exit_code = 0;
  for (auto& runtime : runtimes) {
    if (absl::Status s = runtime->Stop(); !s.ok()) {
      leftfold::LogWarning(kComponent, "projector stopped with error", {{"error", s.ToString()}});
      exit_code = 1;
    }
  }
  return exit_code;
}
