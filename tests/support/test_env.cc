#include "support/test_env.h"

#include <sys/wait.h>
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

int RunSelfAsChild(const std::string& test, const std::vector<std::string>& env) {
  std::vector<std::string> env_entries = env;
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (std::string& entry : env_entries) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::string filter = absl::StrCat("--gtest_filter=", test);
  std::string also = "--gtest_also_run_disabled_tests";
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  char* argv[] = {self.data(), filter.data(), also.data(), nullptr};
  pid_t child = fork();
  if (child < 0) return -1;
  if (child == 0) {
    execve(self.c_str(), argv, envp.data());
    _exit(127);
  }
  int status = 0;
  if (waitpid(child, &status, 0) != child) return -1;
  return status;
}

}  // namespace leftfold::testing
