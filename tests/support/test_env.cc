#include "support/test_env.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>

#include "absl/strings/str_cat.h"

namespace leftfold::testing {

std::string TestBrokers() {
  const char* brokers = std::getenv("LEFTFOLD_TEST_BROKERS");
  return brokers == nullptr ? "" : brokers;
}

std::string MakeTempDir(const std::string& prefix) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / absl::StrCat("leftfold-", prefix, "-XXXXXX"))
          .string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

std::string UniqueName(const std::string& base) {
  static std::atomic<int> counter{0};
  static const uint32_t salt = std::random_device{}();
  return absl::StrCat(base, "-", getpid(), "-", salt % 100000, "-", counter++);
}

}  // namespace leftfold::testing
