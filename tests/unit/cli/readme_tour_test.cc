// README.md's "A five-minute tour" as a test: every ```console block of that section is parsed,
// each `$ leftfold ...` line is run with the real `leftfold` binary against a leftfold-dev child
// (embedded log, temp data dir, default partition count, as `tools/dev` runs it), and what the CLI
// prints is compared with the README's lines. Only what legitimately differs between runs is
// normalised: generated command ids (UUIDs, bound consistently: the same README id must be the
// same real id everywhere), timestamps, and the README's elisions (`abc-...`, a trailing `...`, a
// line `...` alone for any number of lines). Any other line in a tour block fails the test, so the
// README cannot drift into commands nobody runs.
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "subprocess.h"
#include "support/test_env.h"

namespace leftfold::testing {
namespace {

constexpr absl::Duration kCliTimeout = absl::Seconds(60);
// Views and subscriptions are asynchronous: a read-only command is re-run until its output
// matches the README or this much time has passed (a human typing the tour never sees the lag).
constexpr absl::Duration kReadRetryDeadline = absl::Seconds(15);
constexpr char kTourHeading[] = "## A five-minute tour";
constexpr char kRestartLine[] = "pkill -9 leftfold-dev; tools/dev &";
constexpr char kEchoExit[] = "; echo \"exit=$?\"";
constexpr char kDevNull[] = " > /dev/null";

struct ReadmeLine {
  int number = 0;  // 1-based line number in README.md
  std::string text;
};

struct Step {
  ReadmeLine command;  // without the leading "$ "
  std::vector<ReadmeLine> output;
};

// LEFTFOLD_TOUR_README points the test at another copy, e.g. to check a README edit (or that a
// wrong line fails) without touching the tree's README.md.
std::string ReadmePath() {
  const char* override_path = std::getenv("LEFTFOLD_TOUR_README");
  if (override_path != nullptr && *override_path != '\0') return override_path;
  return std::string(LEFTFOLD_SOURCE_DIR) + "/README.md";
}

// The console blocks of the tour section, as steps. Output lines before the first `$` line of a
// block are an error (reported through `error`).
std::vector<Step> TourSteps(const std::string& readme, std::string* error) {
  std::vector<std::string> lines = absl::StrSplit(readme, '\n');
  std::vector<Step> steps;
  bool in_tour = false;
  bool in_block = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    int number = static_cast<int>(i) + 1;
    if (!in_block && absl::StartsWith(line, "## ")) {
      if (in_tour) break;  // the next section
      in_tour = (line == kTourHeading);
      continue;
    }
    if (!in_tour) continue;
    if (!in_block) {
      if (line == "```console") in_block = true;
      continue;
    }
    if (line == "```") {
      in_block = false;
      continue;
    }
    if (absl::StartsWith(line, "$ ")) {
      steps.push_back(Step{ReadmeLine{number, line.substr(2)}, {}});
    } else if (steps.empty()) {
      *error = absl::StrCat("README.md:", number, ": output line before any `$ ` command: ", line);
      return {};
    } else {
      steps.back().output.push_back(ReadmeLine{number, line});
    }
  }
  if (!in_tour) *error = absl::StrCat("README.md has no section '", kTourHeading, "'");
  return steps;
}

// Splits a command line into words the way sh would for the quoting the README uses ('...',
// "...", backslash). Unquoted shell syntax (pipes, redirections, `;`, `$`, ...) is an error: the
// test cannot honestly run it.
std::optional<std::vector<std::string>> ShellWords(const std::string& line, std::string* error) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\'') {
      size_t end = line.find('\'', i + 1);
      if (end == std::string::npos) {
        *error = "unterminated '";
        return std::nullopt;
      }
      word += line.substr(i + 1, end - i - 1);
      in_word = true;
      i = end;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '$' || line[j] == '`') {
          *error = "substitution inside \"...\"";
          return std::nullopt;
        }
        if (line[j] == '\\' && j + 1 < line.size()) ++j;
        word += line[j];
      }
      if (j >= line.size()) {
        *error = "unterminated \"";
        return std::nullopt;
      }
      in_word = true;
      i = j;
    } else if (c == '\\' && i + 1 < line.size()) {
      word += line[++i];
      in_word = true;
    } else if (absl::StrContains(";|&<>$`()*?[]{}~#", c)) {
      *error = absl::StrCat("unsupported shell syntax '", std::string(1, c), "'");
      return std::nullopt;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

// One README output line compiled to a regex. Capture groups are typed so run-specific values can
// be bound across lines.
struct LinePattern {
  enum class Group { kUuid, kUuidPrefix };
  bool any_lines = false;  // the line is `...` alone: zero or more lines
  std::regex regex;
  std::vector<std::pair<Group, std::string>> groups;  // kind, README value
};

std::string RegexEscape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (absl::StrContains(R"(\^$.|?*+()[]{}/)", c)) out += '\\';
    out += c;
  }
  return out;
}

LinePattern Compile(const std::string& line) {
  LinePattern p;
  if (absl::StripAsciiWhitespace(line) == "...") {
    p.any_lines = true;
    return p;
  }
  // Alternatives, first match wins at a position: a full UUID, a UUID elided after its first
  // group (`ef5b2b29-...`), any other `-...` elision, an RFC 3339 timestamp, a trailing `...`.
  static const std::regex kSpecial(
      R"(([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|([0-9a-f]{8})-\.\.\.|(-\.\.\.)|([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z)|(\.\.\.$))");
  std::string re;
  auto begin = std::sregex_iterator(line.begin(), line.end(), kSpecial);
  size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    re += RegexEscape(absl::string_view(line).substr(last, m.position(0) - last));
    last = m.position(0) + m.length(0);
    if (m[1].matched) {
      re += "([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})";
      p.groups.emplace_back(LinePattern::Group::kUuid, m[1].str());
    } else if (m[2].matched) {
      re += "([0-9a-f]{8})-[0-9a-f-]*";
      p.groups.emplace_back(LinePattern::Group::kUuidPrefix, m[2].str());
    } else if (m[3].matched) {
      re += R"(-\S*)";
    } else if (m[4].matched) {
      re += R"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z)";
    } else {
      re += ".*";
    }
  }
  re += RegexEscape(absl::string_view(line).substr(last));
  p.regex = std::regex(re);
  return p;
}

// README UUID -> the UUID this run generated in its place.
using Bindings = std::map<std::string, std::string>;

bool MatchLine(const LinePattern& p, const std::string& actual, Bindings& bindings) {
  std::smatch m;
  if (!std::regex_match(actual, m, p.regex)) return false;
  Bindings updated = bindings;
  for (size_t g = 0; g < p.groups.size(); ++g) {
    const auto& [kind, readme_value] = p.groups[g];
    std::string real = m[g + 1].str();
    if (kind == LinePattern::Group::kUuid) {
      auto [it, inserted] = updated.emplace(readme_value, real);
      if (!inserted && it->second != real) return false;
      // Two README ids must not stand for the same real one either.
      for (const auto& [other_readme, other_real] : updated) {
        if (other_readme != readme_value && other_real == real) return false;
      }
    } else {
      for (const auto& [bound_readme, bound_real] : updated) {
        if (absl::StartsWith(bound_readme, readme_value) && !absl::StartsWith(bound_real, real)) {
          return false;
        }
      }
    }
  }
  bindings = std::move(updated);
  return true;
}

// Whether `actual[a...]` matches `expected[e...]`, backtracking over `...` lines.
bool MatchLines(const std::vector<LinePattern>& expected, size_t e,
                const std::vector<std::string>& actual, size_t a, Bindings& bindings) {
  if (e == expected.size()) return a == actual.size();
  if (expected[e].any_lines) {
    for (size_t skip = a; skip <= actual.size(); ++skip) {
      Bindings attempt = bindings;
      if (MatchLines(expected, e + 1, actual, skip, attempt)) {
        bindings = std::move(attempt);
        return true;
      }
    }
    return false;
  }
  if (a == actual.size()) return false;
  Bindings attempt = bindings;
  if (!MatchLine(expected[e], actual[a], attempt)) return false;
  if (!MatchLines(expected, e + 1, actual, a + 1, attempt)) return false;
  bindings = std::move(attempt);
  return true;
}

std::vector<std::string> OutputLines(const std::string& out) {
  if (out.empty()) return {};
  std::vector<std::string> lines = absl::StrSplit(absl::StripSuffix(out, "\n"), '\n');
  return lines;
}

// A side-by-side report of the README lines and what the CLI printed.
std::string Diff(const std::vector<ReadmeLine>& expected, const std::vector<std::string>& actual,
                 Bindings bindings) {
  std::string out = "  README says:\n";
  for (const ReadmeLine& l : expected)
    absl::StrAppend(&out, "    README.md:", l.number, "| ", l.text, "\n");
  out += "  the CLI printed:\n";
  for (const std::string& l : actual) absl::StrAppend(&out, "           | ", l, "\n");
  // The first README line with no counterpart, to point at (ignoring `...` lines).
  for (size_t i = 0; i < expected.size() && i < actual.size(); ++i) {
    LinePattern p = Compile(expected[i].text);
    if (p.any_lines) break;
    if (!MatchLine(p, actual[i], bindings)) {
      absl::StrAppend(&out, "  first difference: README.md:", expected[i].number,
                      "\n    README: ", expected[i].text, "\n    actual: ", actual[i], "\n");
      return out;
    }
  }
  if (expected.size() != actual.size()) {
    absl::StrAppend(&out, "  line count differs: README ", expected.size(), ", actual ",
                    actual.size(), "\n");
  }
  return out;
}

class ReadmeTourTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("readme_tour");
    int port = FreePort();
    ASSERT_GT(port, 0);
    address_ = absl::StrCat("127.0.0.1:", port);
    StartServer();
  }

  void TearDown() override {
    if (server_ != nullptr) {
      EXPECT_EQ(server_->Terminate(absl::Seconds(30)), 0)
          << "leftfold-dev exit status after SIGTERM; log in " << dir_ << "/server.log";
    }
  }

  // Like `tools/dev`: the default partition count (the README's positions depend on it), state
  // under one data dir that survives restarts.
  void StartServer() {
    server_ = std::make_unique<Background>(
        std::vector<std::string>{LEFTFOLD_DEV_BINARY, "--listen", address_, "--data-dir",
                                 dir_ + "/data"},
        dir_ + "/server.log");
    ASSERT_GT(server_->pid(), 0);
    auto channel = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    bool connected = false;
    while (!connected && absl::Now() < deadline && server_->Running()) {
      connected = channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    }
    ASSERT_TRUE(connected) << "leftfold-dev did not come up at " << address_ << "; log in " << dir_
                           << "/server.log";
  }

  // `pkill -9 leftfold-dev; tools/dev &`: a crash, then a restart on the same data dir and port.
  void KillAndRestart() {
    ASSERT_TRUE(server_->Running()) << "leftfold-dev died before the README's kill -9";
    kill(server_->pid(), SIGKILL);
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (server_->Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
    ASSERT_FALSE(server_->Running()) << "leftfold-dev survived SIGKILL";
    server_.reset();
    StartServer();
  }

  RunResult Cli(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {LEFTFOLD_CLI_BINARY, "--server", address_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, kCliTimeout);
  }

  void RunStep(const Step& step);

  std::string dir_;
  std::string address_;
  std::unique_ptr<Background> server_;
  Bindings bindings_;
  int matched_ = 0;  // steps that ran and matched
  int retried_ = 0;  // of those, read-only ones that needed more than one attempt
};

void ReadmeTourTest::RunStep(const Step& step) {
  const std::string where =
      absl::StrCat("README.md:", step.command.number, ": $ ", step.command.text);
  SCOPED_TRACE(where);
  if (step.command.text == kRestartLine) {
    EXPECT_TRUE(step.output.empty()) << "the restart line prints nothing in a terminal";
    KillAndRestart();
    if (!HasFatalFailure()) ++matched_;
    return;
  }
  absl::string_view line = step.command.text;
  bool check_exit = absl::ConsumeSuffix(&line, kEchoExit);
  bool discard_stdout = absl::ConsumeSuffix(&line, kDevNull);
  std::string error;
  std::optional<std::vector<std::string>> words = ShellWords(std::string(line), &error);
  ASSERT_TRUE(words.has_value()) << where << "\n  the tour test cannot run this line (" << error
                                 << "); the tour may use only `leftfold ...` (optionally `> "
                                    "/dev/null` or `; echo \"exit=$?\"`) "
                                    "and the line `"
                                 << kRestartLine << "`";
  ASSERT_TRUE(!words->empty() && (*words)[0] == "leftfold")
      << where << "\n  is neither a `leftfold` command nor `" << kRestartLine
      << "`: the tour test cannot run it, so the README may not show it";

  std::vector<ReadmeLine> expected = step.output;
  int expected_exit = 0;
  if (check_exit) {
    static const std::regex kExitLine(R"(exit=([0-9]+))");
    std::smatch m;
    ASSERT_TRUE(!expected.empty() && std::regex_match(expected.back().text, m, kExitLine))
        << where << "\n  ends in `echo \"exit=$?\"` but its output does not end with `exit=N`";
    expected_exit = std::stoi(m[1].str());
    expected.pop_back();
  }
  std::vector<LinePattern> patterns;
  for (const ReadmeLine& l : expected) patterns.push_back(Compile(l.text));

  std::vector<std::string> args(words->begin() + 1, words->end());
  // `send` changes state: it runs exactly once. Everything else only reads, and may lag.
  const bool read_only = args.empty() || args[0] != "send";
  absl::Time deadline = absl::Now() + kReadRetryDeadline;
  for (int attempt = 1;; ++attempt) {
    RunResult r = Cli(args);
    // In a terminal stderr shows too; with `> /dev/null` only stderr does.
    std::string shown = discard_stdout ? r.err : r.out + r.err;
    std::vector<std::string> actual = OutputLines(shown);
    Bindings attempt_bindings = bindings_;
    bool exit_ok = r.exit_code == expected_exit;
    bool output_ok = MatchLines(patterns, 0, actual, 0, attempt_bindings);
    if (exit_ok && output_ok) {
      bindings_ = std::move(attempt_bindings);
      ++matched_;
      if (attempt > 1) ++retried_;
      return;
    }
    if (!read_only || absl::Now() >= deadline) {
      EXPECT_EQ(r.exit_code, expected_exit)
          << where << "\n  exit code differs from the README's (stderr: " << r.err << ")";
      EXPECT_TRUE(output_ok) << where << " (attempt " << attempt << ")\n"
                             << Diff(expected, actual, bindings_);
      return;
    }
    absl::SleepFor(absl::Milliseconds(200));  // poll interval of the retry above
  }
}

TEST(ReadmeTourMatcher, NormalisesOnlyRunSpecificValues) {
  Bindings b;
  LinePattern p = Compile("ACCEPTED x command ef5b2b29-25b1-45a0-b88d-8d870c0688b1");
  EXPECT_TRUE(MatchLine(p, "ACCEPTED x command 11111111-2222-4333-8444-555555555555", b));
  // The same README id must be the same real id later, full or elided.
  EXPECT_FALSE(MatchLine(p, "ACCEPTED x command 99999999-2222-4333-8444-555555555555", b));
  LinePattern elided = Compile("v1 command ef5b2b29-... at 2026-11-26T13:53:05Z");
  EXPECT_TRUE(MatchLine(elided,
                        "v1 command 11111111-2222-4333-8444-555555555555 at "
                        "2027-01-02T03:04:05.123Z",
                        b));
  EXPECT_FALSE(MatchLine(elided,
                         "v1 command 99999999-2222-4333-8444-555555555555 at "
                         "2027-01-02T03:04:05Z",
                         b));
  // Anything else is literal.
  EXPECT_FALSE(MatchLine(Compile("balance 150"), "balance 151", b));
  EXPECT_FALSE(MatchLine(Compile("a.b"), "axb", b));
  std::vector<LinePattern> lines = {Compile("head"), Compile("  ..."), Compile("tail")};
  EXPECT_TRUE(MatchLines(lines, 0, {"head", "x", "y", "tail"}, 0, b));
  EXPECT_TRUE(MatchLines(lines, 0, {"head", "tail"}, 0, b));
  EXPECT_FALSE(MatchLines(lines, 0, {"head", "x"}, 0, b));
}

TEST(ReadmeTourMatcher, RejectsShellSyntaxItCannotRun) {
  std::string error;
  EXPECT_FALSE(ShellWords("leftfold get a b | jq .", &error).has_value());
  EXPECT_FALSE(ShellWords("leftfold get a $KEY", &error).has_value());
  auto words = ShellWords(R"(leftfold send t id C '{"a":1}' --wait)", &error);
  ASSERT_TRUE(words.has_value()) << error;
  EXPECT_EQ(words->back(), "--wait");
  EXPECT_EQ((*words)[5], R"({"a":1})");
}

TEST_F(ReadmeTourTest, EveryCommandPrintsWhatTheReadmeShows) {
  std::ifstream in(ReadmePath());
  ASSERT_TRUE(in) << "cannot read " << ReadmePath();
  std::stringstream text;
  text << in.rdbuf();
  std::string error;
  std::vector<Step> steps = TourSteps(text.str(), &error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_GE(steps.size(), 5u) << "the tour has fewer commands than expected; parse error?";
  for (const Step& step : steps) {
    RunStep(step);
    if (HasFatalFailure()) return;
  }
  EXPECT_EQ(matched_, static_cast<int>(steps.size()));
  std::cout << "README tour: " << matched_ << " of " << steps.size() << " steps matched, "
            << retried_ << " read-only ones after a retry, " << bindings_.size()
            << " README command ids bound\n";
}

}  // namespace
}  // namespace leftfold::testing
