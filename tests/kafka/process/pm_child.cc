// A process manager as a child process, for the static-membership test (process_manager_test.cc):
// it turns every google.protobuf.StringValue event of `pm.source` into a command to `pm.target`
// (command id "<aggregate id>/cmd"), until SIGTERM, or until the test SIGKILLs it.
//
//   pm_child BROKERS TOPIC_PREFIX INSTANCE_ID [SESSION_TIMEOUT_MS]
//   (INSTANCE_ID "-": no instance id, a dynamic group member)
#include <cstdio>
#include <string>
#include <thread>

#include "common/signals.h"
#include "google/protobuf/wrappers.pb.h"
#include "leftfold/logging.h"
#include "leftfold/process_manager.h"
#include "leftfold/transport.h"

int main(int argc, char** argv) {
  leftfold::services::BlockTerminationSignals();
  if (argc < 4) {
    std::fprintf(stderr, "usage: pm_child BROKERS TOPIC_PREFIX INSTANCE_ID [SESSION_TIMEOUT_MS]\n");
    return 2;
  }
  leftfold::TransportOptions transport_options{
      .brokers = argv[1], .topic_prefix = argv[2], .partitions = 3};
  if (argc > 4) transport_options.kafka_properties["session.timeout.ms"] = argv[4];
  auto transport = leftfold::Transport::Open(transport_options);
  if (!transport.ok()) {
    leftfold::LogError("pm_child", "open", {{"error", transport.status().ToString()}});
    return 1;
  }
  leftfold::ProcessDefinition definition =
      leftfold::ProcessDefinition("pm-test").OnEvent<google::protobuf::StringValue>(
          "pm.source",
          [](const leftfold::v1::EventEnvelope& envelope,
             const google::protobuf::StringValue& event,
             leftfold::ProcessContext& ctx) -> absl::Status {
            return ctx.Send("pm.target", leftfold::AggregateId(envelope.aggregate_id()), event,
                            leftfold::CommandId(envelope.aggregate_id() + "/cmd"));
          });
  std::string instance_id = argv[3];
  auto pm = leftfold::ProcessManager::Create(
      *transport, definition, {.instance_id = instance_id == "-" ? "" : instance_id});
  if (!pm.ok()) {
    leftfold::LogError("pm_child", "create", {{"error", pm.status().ToString()}});
    return 1;
  }
  absl::Status status;
  std::thread runner([&] { status = (*pm)->Run(); });
  leftfold::services::WaitForTerminationSignal();
  (*pm)->Stop();
  runner.join();
  return status.ok() ? 0 : 1;
}
