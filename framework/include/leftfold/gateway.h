// The command gateway: the gRPC service `leftfold.v1.CommandGateway`
// (proto/leftfold/v1/gateway_service.proto) that puts clients' commands on `<T>.commands` and
// hands them back their `CommandResult`s and events, for any number of gateway instances.
//
// The simplest use, a server with health checking and reflection:
//
//   auto transport = leftfold::Transport::Open({.brokers = "127.0.0.1:9092"});
//   auto server = leftfold::ServeGateway(*transport, {.aggregate_types = {"bank.account"}},
//                                        "127.0.0.1:50051");
//   if (!server.ok()) return server.status();
//   ...
//   (*server)->Shutdown(absl::Seconds(10));   // drains in-flight calls
//
// Or register the service on a grpc::ServerBuilder of your own:
//
//   auto gateway = leftfold::Gateway::Create(transport, options);
//   builder.RegisterService((*gateway)->service());
//   (*gateway)->Start();   ... server->Shutdown(); (*gateway)->Stop();
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "leftfold/transport.h"

namespace grpc {
class Service;
class Server;
}  // namespace grpc

namespace leftfold {

struct GatewayOptions {
  // The aggregate types this gateway routes; commands for any other type are INVALID_ARGUMENT.
  // Required (at least one).
  std::vector<std::string> aggregate_types;
  // Commands accepted but not yet answered (Submit: until acknowledged; Execute: until the
  // result). Beyond it calls get RESOURCE_EXHAUSTED instead of queuing. Default: 10000.
  size_t max_inflight = 10000;
  // Execute waits at most this long when the client set no (or a longer) deadline; also the cap
  // and the default of ExecuteStream's per-command timeout. Default: 30s.
  absl::Duration max_execute_wait = absl::Seconds(30);
  // ExecuteStream: commands one stream may have read and not yet answered (their responses
  // written). At this many the gateway stops reading that stream until answers go out, so a
  // sender is held back by HTTP/2 flow control instead of buffered. Default: 1024.
  size_t max_stream_pending = 1024;
  // Items a subscriber may have queued and unsent; beyond it its stream ends with
  // RESOURCE_EXHAUSTED and a resume position. Default: 10000.
  size_t subscriber_buffer = 10000;
  // Recent results kept for GetResult and for an Execute of an already-answered id. Default:
  // 100000.
  size_t result_cache_size = 100000;
  // At start-up the results reader begins this many records before the end of each partition,
  // so GetResult finds results of the last moments before the start. Default: 1000.
  int64_t results_lookback = 1000;
  // Create the topics of each routed type when missing (Transport's partition count) and check
  // they are co-partitioned. Default: true.
  bool ensure_topics = true;
};

// One gateway instance over one Transport. Owned by the caller; must outlive the grpc::Server
// its service is registered on (Shutdown the server, then Stop, then destroy). Thread-safe.
class Gateway {
 public:
  static absl::StatusOr<std::unique_ptr<Gateway>> Create(std::shared_ptr<Transport> transport,
                                                         GatewayOptions options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // The callback service to register on a grpc::ServerBuilder. Owned by the Gateway.
  grpc::Service* service();

  // Creates missing topics and starts the producer, the results reader and the events reader.
  absl::Status Start();
  // New calls get UNAVAILABLE and subscription streams end (UNAVAILABLE), so they do not hold up
  // grpc::Server::Shutdown; in-flight Submit/Execute calls go on until answered.
  void BeginShutdown();
  // Stops accepting calls (UNAVAILABLE), ends subscription streams (UNAVAILABLE), fails waiting
  // Executes, flushes the producer and joins the background threads. Idempotent. To drain, shut
  // the grpc::Server down first (it waits for in-flight calls), then Stop.
  void Stop();

  // Commands in flight now (for tests and metrics).
  size_t inflight() const;

  class Impl;

 private:
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A grpc::Server running one Gateway, with standard health checking and server reflection.
// Owned by the caller; Shutdown (or the destructor) stops both. Thread-safe.
class GatewayServer {
 public:
  ~GatewayServer();
  // The bound port (useful with "host:0").
  int port() const { return port_; }
  Gateway& gateway() { return *gateway_; }
  // Health goes NOT_SERVING, the server stops accepting calls, in-flight calls get up to
  // `drain` to finish (then are cancelled), then the gateway stops. Idempotent.
  void Shutdown(absl::Duration drain);
  // Blocks until Shutdown has finished.
  void Wait();

 private:
  friend absl::StatusOr<std::unique_ptr<GatewayServer>> ServeGateway(std::shared_ptr<Transport>,
                                                                     GatewayOptions,
                                                                     const std::string&);
  GatewayServer() = default;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::once_flag shutdown_once_;
  absl::Notification shut_down_;
};

// Starts a Gateway and a grpc::Server listening on `listen_address` ("host:port", port 0 picks
// one), insecure credentials. Link gRPC::grpc++_reflection into the binary.
absl::StatusOr<std::unique_ptr<GatewayServer>> ServeGateway(std::shared_ptr<Transport> transport,
                                                            GatewayOptions options,
                                                            const std::string& listen_address);

}  // namespace leftfold
