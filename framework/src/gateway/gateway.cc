#include "leftfold/gateway.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gateway/gateway_service.h"
#include "leftfold/logging.h"

namespace leftfold {

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(std::shared_ptr<Transport> transport,
                                                         GatewayOptions options) {
  if (transport == nullptr) return absl::InvalidArgumentError("Gateway needs a Transport");
  if (options.aggregate_types.empty()) {
    return absl::InvalidArgumentError("GatewayOptions.aggregate_types: route at least one type");
  }
  for (const std::string& t : options.aggregate_types) {
    if (t.empty()) return absl::InvalidArgumentError("GatewayOptions.aggregate_types: empty name");
  }
  if (options.max_inflight == 0 || options.subscriber_buffer == 0 ||
      options.max_stream_pending == 0) {
    return absl::InvalidArgumentError(
        "GatewayOptions: max_inflight, subscriber_buffer and max_stream_pending must be at least "
        "1");
  }
  return std::unique_ptr<Gateway>(
      new Gateway(std::make_unique<Impl>(std::move(transport), std::move(options))));
}

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gateway::~Gateway() { Stop(); }
grpc::Service* Gateway::service() { return impl_.get(); }
absl::Status Gateway::Start() { return impl_->Start(); }
void Gateway::BeginShutdown() { impl_->BeginShutdown(); }
void Gateway::Stop() { impl_->Stop(); }
size_t Gateway::inflight() const { return impl_->inflight(); }

absl::StatusOr<std::unique_ptr<GatewayServer>> ServeGateway(std::shared_ptr<Transport> transport,
                                                            GatewayOptions options,
                                                            const std::string& listen_address) {
  absl::StatusOr<std::unique_ptr<Gateway>> gateway =
      Gateway::Create(std::move(transport), std::move(options));
  if (!gateway.ok()) return gateway.status();
  if (absl::Status s = (*gateway)->Start(); !s.ok()) return s;

  // Process-wide switches of gRPC; both must precede the builder.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::unique_ptr<GatewayServer> server(new GatewayServer());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen_address, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService((*gateway)->service());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    (*gateway)->Stop();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen_address));
  }
  server->gateway_ = *std::move(gateway);
  server->server_->GetHealthCheckService()->SetServingStatus(true);
  LogInfo("gateway", "listening",
          {{"address", listen_address}, {"port", absl::StrCat(server->port_)}});
  return server;
}

GatewayServer::~GatewayServer() { Shutdown(absl::ZeroDuration()); }

void GatewayServer::Shutdown(absl::Duration drain) {
  std::call_once(shutdown_once_, [&] {
    LogInfo("gateway", "shutting down", {{"drain", absl::FormatDuration(drain)}});
    server_->GetHealthCheckService()->SetServingStatus(false);
    gateway_->BeginShutdown();
    // Waits for in-flight calls until the deadline, then cancels what is left.
    server_->Shutdown(absl::ToChronoTime(absl::Now() + drain));
    gateway_->Stop();
    server_->Wait();
    shut_down_.Notify();
  });
}

void GatewayServer::Wait() { shut_down_.WaitForNotification(); }

}  // namespace leftfold
