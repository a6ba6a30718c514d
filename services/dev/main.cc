// leftfold-dev: the whole example stack in one process — the gRPC command gateway, the example
// aggregates' processors and their projectors with the query service — on the embedded log by
// default (no Kafka needed), or on a Kafka cluster with --brokers.
//
//   leftfold-dev                         # 127.0.0.1:50051, state in ./leftfold-data
//   leftfold-dev --brokers 127.0.0.1:9092 --listen 0.0.0.0:50051
//   leftfold-dev --help
#include <signal.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "balances.h"
#include "bank/bank_aggregate.h"
#include "bank/transfer.h"
#include "clicks/clicks.h"
#include "common/grpc_server.h"
#include "common/signals.h"
#include "invoices/invoice_aggregate.h"
#include "invoices/invoice_list.h"
#include "invoices/invoices_sql.h"
#include "leftfold/gateway.h"
#include "leftfold/logging.h"
#include "leftfold/process_manager.h"
#include "leftfold/processor.h"
#include "leftfold/projector.h"
#include "projection/query_service.h"

namespace {

constexpr char kComponent[] = "dev";

struct Options {
  std::string listen = "127.0.0.1:50051";
  std::string data_dir = "leftfold-data";
  // Empty: the PostgreSQL projection of invoices is not run.
  std::string postgres;
  leftfold::TransportOptions transport;
};

int Run(const Options& options) {
  leftfold::TransportOptions transport_options = options.transport;
  transport_options.embedded_dir = options.data_dir + "/log";
  auto transport = leftfold::Transport::Open(transport_options);
  if (!transport.ok()) {
    leftfold::LogError(kComponent, "cannot open the log",
                       {{"error", transport.status().ToString()}});
    return 1;
  }

  // Processors, one thread each.
  std::vector<leftfold::AggregateDefinition> aggregates = {
      bank::AccountDefinition(), bank::TransferDefinition(), clicks::ClicksAggregate(),
      invoices::InvoiceDefinition()};
  std::vector<std::string> types;
  std::vector<std::unique_ptr<leftfold::Processor>> processors;
  for (const leftfold::AggregateDefinition& definition : aggregates) {
    types.push_back(definition.type());
    auto processor = leftfold::Processor::Create(
        *transport, definition,
        {.state_dir = options.data_dir + "/state", .group = "", .instance_id = "dev"});
    if (!processor.ok()) {
      leftfold::LogError(kComponent, "cannot create processor",
                         {{"type", definition.type()}, {"error", processor.status().ToString()}});
      return 1;
    }
    processors.push_back(*std::move(processor));
  }

  auto gateway = leftfold::Gateway::Create(*transport, {.aggregate_types = types});
  if (!gateway.ok()) {
    leftfold::LogError(kComponent, "cannot create gateway",
                       {{"error", gateway.status().ToString()}});
    return 1;
  }
  if (absl::Status s = (*gateway)->Start(); !s.ok()) {
    leftfold::LogError(kComponent, "cannot start gateway", {{"error", s.ToString()}});
    return 1;
  }

  // Projectors and the query service over their views.
  std::vector<leftfold::Projector> projectors = {
      bank::BalancesProjector(), clicks::ClickTotalsProjector(), invoices::InvoiceListProjector()};
  if (!options.postgres.empty()) projectors.push_back(invoices::InvoicesSqlProjector());
  std::vector<std::unique_ptr<leftfold::ProjectorRuntime>> runtimes;
  leftfold::internal::projection::ViewQueryService queries;
  for (const leftfold::Projector& projector : projectors) {
    auto runtime = leftfold::ProjectorRuntime::Start(
        *transport, projector,
        {.store_dir = options.data_dir + "/views/" + projector.name(),
         .postgres_uri = options.postgres,
         // The processors' instance id: a restarted dev server gets its projectors' partitions
         // back at once on Kafka, as it does its processors'.
         .instance_id = "dev"});
    if (!runtime.ok()) {
      leftfold::LogError(kComponent, "cannot start projector",
                         {{"projector", projector.name()}, {"error", runtime.status().ToString()}});
      return 1;
    }
    queries.AddProjector((*runtime)->runner_internal(), (*runtime)->view());
    queries.AddRebuild(**runtime);  // `leftfold projector rebuild NAME`
    runtimes.push_back(*std::move(runtime));
  }

  auto server =
      leftfold::services::StartGrpcServer(options.listen, {(*gateway)->service(), &queries});
  if (!server.ok()) {
    leftfold::LogError(kComponent, "cannot serve", {{"error", server.status().ToString()}});
    return 1;
  }

  // Process managers: the bank transfer (debit, credit, refund on failure).
  // The processors' instance id: on Kafka a killed and restarted dev server resumes transfers at
  // once instead of after the session timeout.
  auto transfers =
      leftfold::ProcessManager::Create(*transport, bank::TransferProcess(), {.instance_id = "dev"});
  if (!transfers.ok()) {
    leftfold::LogError(kComponent, "cannot create process manager",
                       {{"error", transfers.status().ToString()}});
    return 1;
  }

  std::vector<std::thread> threads;
  std::atomic<bool> failed{false};
  threads.emplace_back([&failed, pm = transfers->get()] {
    absl::Status s = pm->Run();
    if (!s.ok()) {
      failed = true;
      kill(getpid(), SIGTERM);
    }
  });
  for (auto& processor : processors) {
    threads.emplace_back([&failed, p = processor.get()] {
      absl::Status s = p->Run();
      if (!s.ok()) {
        failed = true;
        kill(getpid(), SIGTERM);
      }
    });
  }
  leftfold::LogInfo(kComponent, "ready",
                    {{"listen", options.listen},
                     {"backend", (*transport)->backend()},
                     {"aggregates", absl::StrJoin(types, ",")},
                     {"projectors", absl::StrCat(runtimes.size())}});

  int sig = leftfold::services::WaitForTerminationSignal();
  leftfold::LogInfo(kComponent, "stopping", {{"signal", absl::StrCat(sig)}});
  (*gateway)->BeginShutdown();
  (*server)->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  (*gateway)->Stop();
  for (auto& processor : processors) processor->Stop();
  (*transfers)->Stop();
  for (std::thread& t : threads) t.join();
  for (auto& runtime : runtimes) {
    if (absl::Status s = runtime->Stop(); !s.ok()) {
      leftfold::LogWarning(kComponent, "projector stopped with error", {{"error", s.ToString()}});
    }
  }
  leftfold::LogInfo(kComponent, "stopped");
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  leftfold::services::BlockTerminationSignals();
  Options options;
  CLI::App app{"leftfold-dev: gateway, example processors, projectors and queries in one process."};
  app.add_option("--listen", options.listen, "gRPC address")->capture_default_str();
  app.add_option("--brokers", options.transport.brokers,
                 "Kafka bootstrap servers; empty: the embedded log under --data-dir");
  app.add_option("--data-dir", options.data_dir, "embedded log and state stores")
      ->capture_default_str();
  app.add_option("--postgres", options.postgres,
                 "PostgreSQL URI: also run the invoices SQL projection into it");
  app.add_option("--topic-prefix", options.transport.topic_prefix, "prefix of every topic name");
  app.add_option("--partitions", options.transport.partitions, "partitions of created topics")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return Run(options);
}
