// Keeps docs/first-aggregate.md honest: every ```cpp and ```proto block of the guide must appear
// word for word in the compiled sources it quotes (the click counter's code, its proto, and
// clicks_test.cc), so the guide cannot drift from code that builds and passes its tests.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace {

std::string Read(const std::string& relative) {
  std::ifstream in(std::string(LEFTFOLD_SOURCE_DIR) + "/" + relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The bodies of the fenced blocks that open with "```<language>".
std::vector<std::string> Blocks(const std::string& markdown, const std::string& language) {
  std::vector<std::string> blocks;
  std::string current;
  bool inside = false;
  for (absl::string_view line : absl::StrSplit(markdown, '\n')) {
    if (!inside && line == "```" + language) {
      inside = true;
      current.clear();
    } else if (inside && line == "```") {
      inside = false;
      blocks.push_back(current);
    } else if (inside) {
      current.append(line.data(), line.size());
      current.push_back('\n');
    }
  }
  return blocks;
}

TEST(FirstAggregateDocs, EveryCppSnippetIsCompiledCode) {
  std::string guide = Read("docs/first-aggregate.md");
  ASSERT_FALSE(guide.empty()) << "docs/first-aggregate.md not found under " << LEFTFOLD_SOURCE_DIR;
  std::string sources = Read("services/clicks/clicks.h") + Read("services/clicks/clicks.cc") +
                        Read("tests/unit/examples/clicks_test.cc");
  ASSERT_FALSE(sources.empty());
  std::vector<std::string> blocks = Blocks(guide, "cpp");
  EXPECT_GE(blocks.size(), 4u) << "the guide shows the aggregate, the projector and their tests";
  for (const std::string& block : blocks) {
    EXPECT_TRUE(absl::StrContains(sources, block))
        << "this snippet of docs/first-aggregate.md is not in services/clicks/ or "
           "tests/unit/examples/clicks_test.cc; copy it from there:\n"
        << block;
  }
}

TEST(FirstAggregateDocs, EveryProtoSnippetIsTheProtoFile) {
  std::string guide = Read("docs/first-aggregate.md");
  std::string proto = Read("proto/clicks/v1/clicks.proto");
  std::vector<std::string> blocks = Blocks(guide, "proto");
  EXPECT_GE(blocks.size(), 1u);
  for (const std::string& block : blocks) {
    EXPECT_TRUE(absl::StrContains(proto, block))
        << "this snippet is not in proto/clicks/v1/clicks.proto:\n"
        << block;
  }
}

}  // namespace
