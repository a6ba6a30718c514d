// The gRPC server every leftfold binary runs: insecure credentials on `listen`, standard health
// checking and server reflection, the given services registered.
//
//   auto server = leftfold::services::StartGrpcServer("127.0.0.1:50051", {gateway, &queries});
//   if (!server.ok()) ...
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/server.h"

namespace leftfold::services {

// UNAVAILABLE naming the address when it cannot listen there. The services must outlive it.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartGrpcServer(
    const std::string& listen, const std::vector<grpc::Service*>& services);

}  // namespace leftfold::services
