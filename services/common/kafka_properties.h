// The repeatable `--kafka-property KEY=VALUE` flag of leftfold's binaries, parsed into the map
// TransportOptions::kafka_properties takes.
//
//   std::vector<std::string> args;  // filled by CLI11
//   if (!leftfold::services::ParseKafkaProperties(args, options.kafka_properties)) return 2;
#pragma once

#include <map>
#include <string>
#include <vector>

namespace leftfold::services {

// Adds each KEY=VALUE to `out` (a later key wins); false, with a message on stderr, for an entry
// without a key or without '='.
bool ParseKafkaProperties(const std::vector<std::string>& properties,
                          std::map<std::string, std::string>& out);

}  // namespace leftfold::services
