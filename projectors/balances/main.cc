// Runs the account_balances projector until interrupted.
//   balances_projector [brokers]     (no brokers: the embedded log in ./leftfold-data/log)
#include <csignal>
#include <cstdio>

#include "absl/synchronization/notification.h"
#include "balances.h"
#include "leftfold/logging.h"
#include "leftfold/transport.h"

namespace {
absl::Notification* g_stop = nullptr;
void OnSignal(int) {
  if (g_stop && !g_stop->HasBeenNotified()) g_stop->Notify();
}
}  // namespace

int main(int argc, char** argv) {
  auto transport = leftfold::Transport::Open({.brokers = argc > 1 ? argv[1] : ""});
  if (!transport.ok()) {
    std::fprintf(stderr, "%s\n", transport.status().ToString().c_str());
    return 1;
  }
  auto runtime = leftfold::ProjectorRuntime::Start(
      *transport, bank::BalancesProjector(), {.store_dir = "leftfold-data/views/account_balances"});
  if (!runtime.ok()) {
    std::fprintf(stderr, "%s\n", runtime.status().ToString().c_str());
    return 1;
  }
  absl::Notification stop;
  g_stop = &stop;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  stop.WaitForNotification();
  absl::Status s = (*runtime)->Stop();
  return s.ok() ? 0 : 1;
}
