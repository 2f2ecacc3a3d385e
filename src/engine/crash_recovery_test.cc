// Kills a real `persona ingest` process with SIGKILL at random moments, restarts it, re-sends every
// event it had not acknowledged, and checks that the final profiles equal those of a run that never
// crashed: every acknowledged event applied exactly once, nothing lost, nothing doubled.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "engine/engine.h"
#include "engine/testing/engine_test_util.h"
#include "profile/profile_json.h"

namespace persona {
namespace {

using testing_util::AllUsers;
using testing_util::JsonDiff;
using testing_util::TempDir;

struct Child {
  pid_t pid = -1;
  int to_child = -1;    // child's stdin
  int from_child = -1;  // child's stdout
};

Child Spawn(const std::vector<std::string>& args) {
  int in[2], out[2];
  EXPECT_EQ(pipe(in), 0);
  EXPECT_EQ(pipe(out), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    close(in[1]);
    close(out[0]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  return Child{pid, in[1], out[0]};
}

// Reads one line from fd (blocking); false on EOF.
bool ReadLine(int fd, std::string* line) {
  line->clear();
  char c;
  while (true) {
    ssize_t n = read(fd, &c, 1);
    if (n <= 0) return false;
    if (c == '\n') return true;
    line->push_back(c);
  }
}

TEST(CrashRecoveryTest, SigkillDuringIngestLosesNoAcknowledgedEventAndAppliesEachOnce) {
  const std::string file = std::string(PERSONA_DATASETS) + "/taobao/UserBehavior-by-user.csv";
  if (!std::filesystem::exists(file)) GTEST_SKIP() << "dataset absent: " << file;
  ASSERT_TRUE(std::filesystem::exists(PERSONA_BINARY)) << "build the persona binary first";
  std::vector<std::string> lines;
  {
    std::ifstream in(file);
    std::string l;
    while (lines.size() < 24000 && std::getline(in, l)) lines.push_back(l);
  }
  TempDir crash_dir("crash"), ref_dir("crash_ref");
  auto args = [&](const std::string& dir) {
    return std::vector<std::string>{PERSONA_BINARY, "ingest",  "--data", dir,      "--format",
                                    "taobao",       "--batch", "50",     "--sync", "always",
                                    "--partitions", "2",       "--quiet"};
  };
  signal(SIGPIPE, SIG_IGN);
  // Feeds lines[from..] to a child's stdin on a thread; returns the thread.
  auto feed = [&](int fd, size_t from) {
    return std::thread([&lines, fd, from] {
      std::string buf;
      for (size_t i = from; i < lines.size(); ++i) {
        buf += lines[i];
        buf += '\n';
        if (buf.size() > 8192 || i + 1 == lines.size()) {
          if (write(fd, buf.data(), buf.size()) < 0) break;
          buf.clear();
        }
      }
      close(fd);
    });
  };

  // Reference: the same lines, one uninterrupted run. Its duration sets the kill schedule.
  const auto ref_start = std::chrono::steady_clock::now();
  {
    Child child = Spawn(args(ref_dir.path()));
    std::thread writer = feed(child.to_child, 0);
    std::string line;
    while (ReadLine(child.from_child, &line)) {
    }
    writer.join();
    close(child.from_child);
    int status = 0;
    waitpid(child.pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "reference run failed";
  }
  const int64_t ref_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now() - ref_start)
                             .count();

  // Crash runs: each child is killed at a random moment within 1/16 of a full run's duration
  // (startup and recovery included), so ingest is interrupted many times before the input ends.
  std::mt19937_64 rng(20261122);
  size_t next_line = 0;  // 0-based index of the first line not yet acknowledged
  int kills = 0;
  for (int run = 0; next_line < lines.size(); ++run) {
    ASSERT_LT(run, 400) << "no progress: acknowledged " << next_line << " lines";
    const size_t base = next_line;  // the child's line 1 is lines[base]
    Child child = Spawn(args(crash_dir.path()));
    const bool kill_this_run = kills < 30;
    std::thread killer;
    if (kill_this_run) {
      const auto delay =
          std::chrono::microseconds(std::uniform_int_distribution<int64_t>(0, ref_us / 16)(rng));
      killer = std::thread([pid = child.pid, delay] {
        std::this_thread::sleep_for(delay);
        kill(pid, SIGKILL);
      });
    }
    std::thread writer = feed(child.to_child, base);
    std::string line;
    while (ReadLine(child.from_child, &line)) {
      if (line.rfind("ack ", 0) == 0) {
        const size_t acked = std::stoul(line.substr(4));  // lines 1..acked of this run are durable
        next_line = std::max(next_line, base + acked);
      }
    }
    if (killer.joinable()) killer.join();
    writer.join();
    close(child.from_child);
    int status = 0;
    waitpid(child.pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
      ++kills;
    } else {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child failed: " << status;
    }
  }
  EXPECT_GE(kills, 20) << "not enough kills landed before the input was exhausted";
  RecordProperty("kills", kills);

  auto open = [](const std::string& dir) {
    EngineConfig c;
    c.data_dir = dir;
    auto e = Engine::Open(c);
    EXPECT_TRUE(e.ok()) << e.status();
    return std::move(*e);
  };
  auto crashed = open(crash_dir.path());
  auto reference = open(ref_dir.path());
  auto users = AllUsers(*reference);
  ASSERT_EQ(AllUsers(*crashed), users);
  uint64_t acc_ref = 0, acc_crash = 0;
  for (const auto& s : reference->Stats()) acc_ref += s.accepted;
  for (const auto& s : crashed->Stats()) acc_crash += s.accepted;
  EXPECT_EQ(acc_crash, acc_ref) << "events applied a different number of times";
  // Sessions and the sequence depend on arrival order, which re-sending preserves: compare all.
  int diffs = 0;
  for (const auto& u : users) {
    std::string d = JsonDiff(*reference->ProfileJson(u, kAll), *crashed->ProfileJson(u, kAll), 0);
    if (!d.empty() && diffs++ < 5) ADD_FAILURE() << "user " << u << ": " << d;
  }
  EXPECT_EQ(diffs, 0);
}

}  // namespace
}  // namespace persona
