// Structured logging for leftfold and its users, to stderr: one line per event with
// key=value fields, so `grep partition=3` works on any component's log.
//
//   leftfold::LogInfo("processor", "partition assigned", {{"topic", t}, {"partition", "3"}});
//   leftfold::SetLogLevel(leftfold::LogLevel::kDebug);
//
// Thread-safe. Backed by spdlog; its headers stay out of this one.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace leftfold {

enum class LogLevel { kDebug, kInfo, kWarning, kError, kOff };

using LogField = std::pair<std::string_view, std::string_view>;

void SetLogLevel(LogLevel level);
void Log(LogLevel level, std::string_view component, std::string_view message,
         std::initializer_list<LogField> fields = {});

inline void LogDebug(std::string_view c, std::string_view m,
                     std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kDebug, c, m, f);
}
inline void LogInfo(std::string_view c, std::string_view m,
                    std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kInfo, c, m, f);
}
inline void LogWarning(std::string_view c, std::string_view m,
                       std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kWarning, c, m, f);
}
inline void LogError(std::string_view c, std::string_view m,
                     std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kError, c, m, f);
}

}  // namespace leftfold
