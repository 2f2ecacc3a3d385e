// `persona import` as an operator runs it: bad lines are named with their line number and kept as
// dead letters; the run continues unless --strict, which imports what precedes the first bad line
// and nothing after it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "engine/testing/engine_test_util.h"

namespace persona {
namespace {

using testing_util::TempDir;

struct CliRun {
  int exit_code;
  std::string output;  // stdout + stderr
};

CliRun Persona(const std::string& args) {
  const std::string cmd = std::string(PERSONA_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

constexpr const char* kBadFile =
    R"({"user_id":"a","type":"view","ts":1700000000000,"item_id":"x"})"
    "\n"
    R"({"user_id":"a","type":"purchase","ts":1700000000000,"item_id":"x","price":-3})"
    "\n"
    "not json\n"
    R"({"user_id":"b","type":"view","ts":1700000001000,"item_id":"y"})"
    "\n";

TEST(CliImportTest, BadLinesAreNamedKeptAndSkipped) {
  ASSERT_TRUE(std::filesystem::exists(PERSONA_BINARY));
  TempDir dir("cli_import");
  const std::string file = dir.path() + "/events.jsonl";
  std::ofstream(file) << kBadFile;
  CliRun r = Persona("import --data " + dir.path() + "/db --format jsonl " + file);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("line 2: field 'price': must be a number >= 0 for purchase"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("line 3: malformed JSON"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("accepted    2"), std::string::npos) << r.output;
  CliRun dl = Persona("deadletter export --data " + dir.path() + "/db --format jsonl");
  EXPECT_EQ(dl.exit_code, 0);
  EXPECT_NE(dl.output.find("exported 2 dead letter(s)"), std::string::npos) << dl.output;
  EXPECT_EQ(Persona("profile --data " + dir.path() + "/db b").exit_code, 0);
}

TEST(CliImportTest, StrictStopsAtTheFirstBadLineKeepingWhatPrecedesIt) {
  TempDir dir("cli_strict");
  const std::string file = dir.path() + "/events.jsonl";
  std::ofstream(file) << kBadFile;
  CliRun r = Persona("import --strict --data " + dir.path() + "/db --format jsonl " + file);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("line 2:"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("line 3:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("accepted    1"), std::string::npos) << r.output;
  EXPECT_EQ(Persona("profile --data " + dir.path() + "/db a").exit_code, 0);
  EXPECT_EQ(Persona("profile --data " + dir.path() + "/db b").exit_code, 2)
      << "a line after the first bad one was imported";
}

TEST(CliImportTest, UnknownFormatAndHeaderAreUsageErrors) {
  TempDir dir("cli_usage");
  const std::string file = dir.path() + "/events.csv";
  std::ofstream(file) << "1,2,3,pv,1511544070\n";
  CliRun r = Persona("import --data " + dir.path() + "/db --format nope " + file);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown --format 'nope'"), std::string::npos) << r.output;
  r = Persona("import --data " + dir.path() + "/db --format csv " + file);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown column"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace persona
