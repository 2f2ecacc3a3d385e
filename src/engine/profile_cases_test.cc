// Runs the data-driven profile cases in tests/cases/*.case (format: tests/cases/README.md).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/engine.h"
#include "engine/testing/engine_test_util.h"
#include "profile/profile_json.h"

namespace persona {
namespace {

namespace fs = std::filesystem;
using testing_util::BatchFromJson;
using testing_util::TempDir;

fs::path CasesDir() {
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / "tests/cases";
}

// Follows "a.b[2].c" into `root`; error string on a missing step.
std::string Walk(simdjson::dom::element root, const std::string& path,
                 simdjson::dom::element* out) {
  simdjson::dom::element cur = root;
  std::string key;
  auto step_key = [&]() -> std::string {
    if (key.empty()) return "";
    auto next = cur[key];
    if (next.error()) return "no key '" + key + "'";
    cur = next.value_unsafe();
    key.clear();
    return "";
  };
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '.') {
      if (auto e = step_key(); !e.empty()) return e;
    } else if (c == '[') {
      if (auto e = step_key(); !e.empty()) return e;
      const size_t close = path.find(']', i);
      const size_t index = std::stoul(path.substr(i + 1, close - i - 1));
      auto next = cur.at(index);
      if (next.error()) return "no element [" + std::to_string(index) + "]";
      cur = next.value_unsafe();
      i = close;
    } else {
      key.push_back(c);
    }
  }
  if (auto e = step_key(); !e.empty()) return e;
  *out = cur;
  return "";
}

bool SameValue(simdjson::dom::element actual, simdjson::dom::element expected) {
  using simdjson::dom::element_type;
  auto number = [](simdjson::dom::element e, double* v) {
    switch (e.type()) {
      case element_type::DOUBLE:
        *v = double(e);
        return true;
      case element_type::INT64:
        *v = double(int64_t(e));
        return true;
      case element_type::UINT64:
        *v = double(uint64_t(e));
        return true;
      default:
        return false;
    }
  };
  double a, b;
  if (number(actual, &a) && number(expected, &b)) {
    return std::fabs(a - b) <= 1e-9 * std::max({1.0, std::fabs(a), std::fabs(b)});
  }
  return simdjson::to_string(actual) == simdjson::to_string(expected);
}

void RunCase(const fs::path& file) {
  std::ifstream in(file);
  std::string line, events;
  std::vector<std::string> expects;
  enum { kNone, kEvents, kExpect } section = kNone;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line == "--- events") {
      section = kEvents;
      continue;
    }
    if (line == "--- expect") {
      section = kExpect;
      continue;
    }
    if (section == kEvents)
      events += line + "\n";
    else if (section == kExpect)
      expects.push_back(line);
    else
      FAIL() << file << ": text before '--- events': " << line;
  }
  ASSERT_FALSE(events.empty()) << file << ": no events";
  ASSERT_FALSE(expects.empty()) << file << ": no expectations";
  TempDir dir("case");
  EngineConfig c;
  c.data_dir = dir.path();
  c.partitions = 2;
  c.sync = SyncPolicy::kNone;
  auto engine = Engine::Open(c);
  ASSERT_TRUE(engine.ok()) << engine.status();
  (*engine)->Ingest(BatchFromJson(events));
  simdjson::dom::parser profile_parser, value_parser;
  for (const std::string& e : expects) {
    std::istringstream ss(e);
    std::string user, path;
    ss >> user >> path;
    auto json = (*engine)->ProfileJson(user, kAll);
    if (path == "absent") {
      EXPECT_FALSE(json.has_value()) << file.filename() << ": " << e;
      continue;
    }
    ASSERT_TRUE(json.has_value()) << file.filename() << ": unknown user in: " << e;
    std::string eq, rest;
    ss >> eq;
    std::getline(ss, rest);
    ASSERT_EQ(eq, "=") << file.filename() << ": expected 'user path = value': " << e;
    simdjson::dom::element root = profile_parser.parse(*json);
    simdjson::dom::element actual;
    const std::string err = Walk(root, path, &actual);
    ASSERT_EQ(err, "") << file.filename() << ": " << e << "\n" << *json;
    auto expected = value_parser.parse(rest);
    ASSERT_FALSE(expected.error()) << file.filename() << ": value is not JSON: " << rest;
    EXPECT_TRUE(SameValue(actual, expected.value_unsafe()))
        << file.filename() << ": " << e << "\n  actual: " << simdjson::to_string(actual);
  }
}

TEST(ProfileCasesTest, EveryCaseFileHolds) {
  ASSERT_TRUE(fs::exists(CasesDir())) << CasesDir();
  int n = 0;
  for (const auto& entry : fs::directory_iterator(CasesDir())) {
    if (entry.path().extension() != ".case") continue;
    SCOPED_TRACE(entry.path().filename().string());
    RunCase(entry.path());
    ++n;
  }
  EXPECT_GE(n, 3);
}

}  // namespace
}  // namespace persona
