#include "leftfold/logging.h"

#include <cstdlib>
#include <string>

#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace leftfold {
namespace {

spdlog::logger& Logger() {
  static spdlog::logger* logger = [] {
    auto created = spdlog::stderr_color_mt("leftfold");
    created->set_pattern("%Y-%m-%dT%H:%M:%S.%e %L %v");
    const char* env = std::getenv("LEFTFOLD_LOG_LEVEL");
    created->set_level(env ? spdlog::level::from_str(env) : spdlog::level::info);
    return created.get();
  }();
  return *logger;
}

spdlog::level::level_enum ToSpd(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarning:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

void SetLogLevel(LogLevel level) { Logger().set_level(ToSpd(level)); }

void Log(LogLevel level, std::string_view component, std::string_view message,
         std::initializer_list<LogField> fields) {
  spdlog::logger& logger = Logger();
  if (!logger.should_log(ToSpd(level))) return;
  std::string line;
  line.reserve(128);
  line.append("component=").append(component).append(" msg=\"").append(message).append("\"");
  for (const auto& [key, value] : fields) {
    line.append(" ").append(key).append("=");
    bool quote = value.find_first_of(" \"=") != std::string_view::npos || value.empty();
    if (quote) line.append("\"");
    line.append(value);
    if (quote) line.append("\"");
  }
  logger.log(ToSpd(level), line);
}

}  // namespace leftfold
