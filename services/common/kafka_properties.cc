#include "common/kafka_properties.h"

#include <cstdio>

namespace leftfold::services {

bool ParseKafkaProperties(const std::vector<std::string>& properties,
                          std::map<std::string, std::string>& out) {
  for (const std::string& property : properties) {
    size_t eq = property.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "--kafka-property wants KEY=VALUE, got '%s'\n", property.c_str());
      return false;
    }
    out[property.substr(0, eq)] = property.substr(eq + 1);
  }
  return true;
}

}  // namespace leftfold::services
