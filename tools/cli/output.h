// How the `leftfold` CLI prints results and events: one line each, human-readable or JSON.
//
//   PrintResult(global, result);   // "ACCEPTED bank.account/acc-1 version 2 events 1 ..."
//   PrintEvent(global, event);     // "bank.account/acc-1 v2 bank.v1.Deposited {"amount":"5"} ..."
#pragma once

#include <string>

#include "cli.h"
#include "leftfold/v1/envelope.pb.h"

namespace leftfold::cli {

// "bank.account.events/2@17" (topic/partition@offset).
std::string FormatPosition(const v1::Position& position);

// A CommandResult: outcome, aggregate, version, event count, positions (the consistency token),
// or the rejection's code and message.
void PrintResult(const GlobalOptions& global, const v1::CommandResult& result);

// An EventEnvelope with its payload rendered as JSON.
void PrintEvent(const GlobalOptions& global, const v1::EventEnvelope& event);

}  // namespace leftfold::cli
