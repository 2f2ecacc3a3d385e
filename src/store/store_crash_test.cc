// Durable before acknowledged, tested with a real kill -9: a child process appends with sync=true
// from two partition threads and reports each seq through a pipe only after Append returned; the
// parent SIGKILLs it mid-stream, reopens the store and checks that every reported seq is there,
// intact, with its dead letter, and that the log has no holes.
//
// The child is this test binary re-executed (fork + exec), not a bare fork: a forked copy of a
// process that already ran RocksDB would inherit its background thread pool without the threads.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "store/scoped_temp_dir.h"
#include "store/store.h"

extern char** environ;

namespace persona {
namespace {

constexpr char kChildEnv[] = "PERSONA_STORE_CRASH_CHILD";  // "<fd>:<data dir>"
constexpr uint32_t kPartitions = 2;
constexpr int kLetterEvery = 5;

std::string RecordFor(uint32_t partition, uint64_t seq) {
  std::string record = "p" + std::to_string(partition) + "/" + std::to_string(seq) + "|";
  record.append(500 + (seq * 37) % 3000, static_cast<char>('a' + (seq + partition) % 26));
  return record;
}

std::string LetterUser(uint32_t partition, uint64_t seq) {
  return "p" + std::to_string(partition) + "-s" + std::to_string(seq);
}

// The child: appends forever (bounded, in case the parent dies) and acknowledges each append with
// 16 bytes {partition, seq}. Pipe writes up to PIPE_BUF bytes are atomic, so the two threads'
// acknowledgements never interleave.
[[noreturn]] void RunChild(const char* spec) {
  char* rest = nullptr;
  const int fd = static_cast<int>(std::strtol(spec, &rest, 10));
  if (rest == nullptr || *rest != ':') _exit(10);
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(rest + 1, kPartitions);
  if (!store.ok()) _exit(11);
  std::vector<std::thread> writers;
  for (uint32_t p = 0; p < kPartitions; ++p) {
    writers.emplace_back([&store, fd, p] {
      for (uint64_t seq = 1; seq <= 100000; ++seq) {
        std::vector<DeadLetter> letters;
        if (seq % kLetterEvery == 0) {
          letters.push_back(DeadLetter{1, "partition", seq, LetterUser(p, seq), "f", "r", "x"});
        }
        if (!(*store)->Append(p, seq, RecordFor(p, seq), letters, /*sync=*/true).ok()) _exit(12);
        const uint64_t ack[2] = {p, seq};
        if (write(fd, ack, sizeof ack) != sizeof ack) _exit(13);
      }
    });
  }
  for (auto& w : writers) w.join();
  _exit(0);
}

// Runs before main in the re-executed child; a no-op in the normal test run.
const bool kIsChild = [] {
  if (const char* spec = std::getenv(kChildEnv)) RunChild(spec);
  return false;
}();

TEST(StoreCrashTest, SyncedAppendsSurviveKillNineOfTheWritingProcess) {
  ASSERT_FALSE(kIsChild);
  ScopedTempDir dir("kill9");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);

  // Everything the child needs is prepared before fork: between fork and exec only
  // async-signal-safe calls are allowed.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, kChildEnv, std::strlen(kChildEnv)) != 0) env_strings.emplace_back(*e);
  }
  env_strings.push_back(std::string(kChildEnv) + "=" + std::to_string(fds[1]) + ":" + dir.path());
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  char self[] = "/proc/self/exe";
  char* argv[] = {self, nullptr};

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    execve(self, argv, envp.data());
    _exit(127);
  }
  close(fds[1]);

  // Read acknowledgements; kill once enough arrived (or give up after a deadline).
  constexpr size_t kKillAfterAcks = 400;
  std::map<uint32_t, std::set<uint64_t>> acked;
  size_t ack_count = 0;
  std::string pending;
  bool killed = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    if (!killed && (ack_count >= kKillAfterAcks || std::chrono::steady_clock::now() > deadline)) {
      ASSERT_EQ(kill(pid, SIGKILL), 0);
      killed = true;
    }
    pollfd pfd{fds[0], POLLIN, 0};
    if (poll(&pfd, 1, 1000) == 0) continue;
    char buf[4096];
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;  // EOF: the child is gone and everything it acknowledged has been read
    pending.append(buf, static_cast<size_t>(n));
    size_t used = 0;
    for (; pending.size() - used >= 16; used += 16) {
      uint64_t ack[2];
      std::memcpy(ack, pending.data() + used, sizeof ack);
      acked[static_cast<uint32_t>(ack[0])].insert(ack[1]);
      ++ack_count;
    }
    pending.erase(0, used);
  }
  close(fds[0]);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
      << "the child must die by our SIGKILL, not on its own (exit status "
      << (WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1) << ")";
  ASSERT_GE(ack_count, kKillAfterAcks) << "the child acknowledged too few appends before 30 s";
  EXPECT_TRUE(pending.empty()) << "a torn acknowledgement";

  absl::StatusOr<std::unique_ptr<Store>> reopened = Store::Open(dir.path(), kPartitions);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  Store& store = **reopened;
  std::set<std::string> letters;
  absl::StatusOr<std::vector<StoredDeadLetter>> all = store.ListDeadLetters("", 1000000);
  ASSERT_TRUE(all.ok()) << all.status();
  for (const auto& l : *all) letters.insert(l.letter.user_id);

  size_t expected_letters = 0;
  for (uint32_t p = 0; p < kPartitions; ++p) {
    const uint64_t last = *store.LastSeq(p);
    const uint64_t max_acked = acked[p].empty() ? 0 : *acked[p].rbegin();
    EXPECT_GE(last, max_acked) << "partition " << p << " lost acknowledged appends";
    // At most the one append in flight at the kill may be there without an acknowledgement.
    EXPECT_LE(last, max_acked + 1) << "partition " << p;
    uint64_t expect_seq = 1;
    auto it = store.ReadLog(p, 0);
    for (; it->Valid(); it->Next(), ++expect_seq) {
      ASSERT_EQ(it->seq(), expect_seq) << "hole in the log of partition " << p;
      ASSERT_EQ(it->record(), RecordFor(p, it->seq())) << "partition " << p;
      if (it->seq() % kLetterEvery == 0) {
        EXPECT_TRUE(letters.count(LetterUser(p, it->seq())))
            << "record and its dead letter are one atomic write";
        ++expected_letters;
      }
    }
    ASSERT_TRUE(it->status().ok()) << it->status();
    EXPECT_EQ(expect_seq - 1, last);
  }
  EXPECT_EQ(letters.size(), expected_letters) << "no dead letter without its record";
}

}  // namespace
}  // namespace persona
