// `persona train sasrec` as an operator runs it: the real binary on small generated data, the
// artifact it writes loaded back with SasRecModel::Load.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "recommend/sasrec_model.h"
#include "store/scoped_temp_dir.h"

namespace persona {
namespace {

struct CliRun {
  int exit_code;
  std::string out;  // stdout
  std::string err;  // stderr
};

CliRun Persona(const std::string& args, const std::string& dir) {
  const std::string err_file = dir + "/stderr.txt";
  const std::string cmd = std::string(PERSONA_BINARY) + " " + args + " 2>" + err_file;
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  std::ifstream in(err_file);
  std::string err((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, err};
}

// SASRec's `user item` pair format: 40 users walking a ring of 20 items.
void WriteWalks(const std::string& path) {
  std::ofstream f(path);
  std::mt19937 rng(1);
  for (int u = 1; u <= 40; ++u) {
    int item = static_cast<int>(rng() % 20) + 1;
    for (int t = 0; t < 8; ++t) {
      f << u << " " << item << "\n";
      item = item % 20 + 1;
    }
  }
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

constexpr const char* kSmall =
    " --epochs 2 --patience 0 --dim 16 --blocks 1 --max-len 8 --batch 16 --threads 1";

TEST(TrainCommandTest, WritesLoadableArtifactWithEpochHistory) {
  ASSERT_TRUE(std::filesystem::exists(PERSONA_BINARY));
  ScopedTempDir dir("train_cmd");
  WriteWalks(dir.path() + "/walks.txt");
  const std::string model = dir.path() + "/out/m.psm";  // the parent is created
  CliRun r = Persona("train sasrec --input " + dir.path() + "/walks.txt --out " + model + kSmall,
                     dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, model + "\n");
  // Not a terminal: progress comes as whole lines, one per epoch at the end.
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("epoch 1  loss"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("epoch 2  loss"), std::string::npos) << r.err;

  auto loaded = SasRecModel::Load(model);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const SasRecModel& m = **loaded;
  EXPECT_EQ(m.num_items(), 20u);
  EXPECT_EQ(m.hyper().dim, 16u);
  EXPECT_EQ(m.hyper().max_len, 8u);
  EXPECT_EQ(m.version().rfind("sasrec-2", 0), 0u) << m.version();
  const std::string& meta = m.metadata_json();
  EXPECT_EQ(Count(meta, "\"valid_hr10\":"), 2u) << meta;  // two epochs in the history
  EXPECT_NE(meta.find("\"best_epoch\":"), std::string::npos) << meta;
  EXPECT_NE(meta.find("\"users\":40"), std::string::npos) << meta;
  EXPECT_NE(meta.find("\"interactions\":320"), std::string::npos) << meta;
  EXPECT_NE(meta.find("walks.txt"), std::string::npos) << meta;
  EXPECT_NE(meta.find("\"trained_at\":"), std::string::npos) << meta;
}

TEST(TrainCommandTest, BadSequenceLineExitsTwoNamingTheLine) {
  ScopedTempDir dir("train_cmd");
  std::ofstream(dir.path() + "/bad.txt") << "1 5\n1 6\n2\n";
  CliRun r = Persona(
      "train sasrec --input " + dir.path() + "/bad.txt --out " + dir.path() + "/m.psm" + kSmall,
      dir.path());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("line 3"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/m.psm"));
}

TEST(TrainCommandTest, TooShortSequencesExitTwo) {
  ScopedTempDir dir("train_cmd");
  std::ofstream(dir.path() + "/short.txt") << "1 5\n2 6\n3 7\n";  // one item per user
  CliRun r = Persona(
      "train sasrec --input " + dir.path() + "/short.txt --out " + dir.path() + "/m.psm" + kSmall,
      dir.path());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("training items"), std::string::npos) << r.err;
}

TEST(TrainCommandTest, UsageErrorsExitTwo) {
  ScopedTempDir dir("train_cmd");
  WriteWalks(dir.path() + "/walks.txt");
  EXPECT_EQ(Persona("train sasrec --input " + dir.path() + "/walks.txt", dir.path()).exit_code, 2);
  EXPECT_EQ(Persona("train sasrec --out " + dir.path() + "/m.psm", dir.path()).exit_code, 2);
  EXPECT_EQ(Persona("train sasrec --input " + dir.path() + "/walks.txt --format csv --out " +
                        dir.path() + "/m.psm",
                    dir.path())
                .exit_code,
            2);
  EXPECT_EQ(
      Persona("train sasrec --input " + dir.path() + "/missing.txt --out " + dir.path() + "/m.psm",
              dir.path())
          .exit_code,
      2);
}

TEST(TrainCommandTest, DataDirectoryTrainsOnProfilesAndDefaultsTheOutputPath) {
  ScopedTempDir dir("train_cmd");
  const std::string events = dir.path() + "/events.jsonl";
  const std::string data = dir.path() + "/db";
  ASSERT_EQ(Persona("gen --events 4000 --users 60 --items 80 --seed 3 --quiet --out " + events,
                    dir.path())
                .exit_code,
            0);
  CliRun imp = Persona("import --quiet --data " + data + " --format jsonl " + events, dir.path());
  ASSERT_EQ(imp.exit_code, 0) << imp.err;
  CliRun r = Persona("train sasrec --quiet --data " + data + kSmall, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_FALSE(r.out.empty());
  const std::string path = r.out.substr(0, r.out.size() - 1);
  EXPECT_EQ(path.rfind(data + "/models/sasrec/sasrec-", 0), 0u) << path;
  EXPECT_EQ(path.substr(path.size() - 4), ".psm");
  auto loaded = SasRecModel::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_GT((*loaded)->num_items(), 0u);
  EXPECT_NE((*loaded)->metadata_json().find("data directory"), std::string::npos);
}

}  // namespace
}  // namespace persona
