// Crash safety tested with a real kill -9 of a child process that uses the Store, in two forms.
//  - Durable before acknowledged: a child appends with sync=true from two partition threads and
//    reports each seq through a pipe only after Append returned; the parent SIGKILLs it
//    mid-stream, reopens the store and checks that every reported seq is there, intact, with its
//    dead letter, and that the log has no holes.
//  - Checkpoints: a child runs checkpoints as the engine does (profiles of a new generation, the
//    commit with meta and operator state, deletion of replaced versions) and is killed either
//    between a generation's PutProfiles and its commit, or at a random point; after reopening, the
//    newest version of every profile <= the committed seq must be exactly the committed state.
//
// The child is this test binary re-executed (fork + exec), not a bare fork: a forked copy of a
// process that already ran RocksDB would inherit its background thread pool without the threads.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "store/scoped_temp_dir.h"
#include "store/store.h"

extern char** environ;

namespace persona {
namespace {

constexpr char kChildEnv[] = "PERSONA_STORE_CRASH_CHILD";  // "<mode>:<fd>:<data dir>"
constexpr uint32_t kPartitions = 2;
constexpr int kLetterEvery = 5;

// What the children acknowledge through the pipe: 16 bytes, two u64. Pipe writes up to PIPE_BUF
// bytes are atomic, so acknowledgements of different threads never interleave.
using Ack = std::array<uint64_t, 2>;

void Acknowledge(int fd, uint64_t a, uint64_t b) {
  const Ack ack = {a, b};
  if (write(fd, ack.data(), sizeof ack) != sizeof ack) _exit(13);
}

// ---- mode "log": durable appends ----------------------------------------------------------------

std::string RecordFor(uint32_t partition, uint64_t seq) {
  std::string record = "p" + std::to_string(partition) + "/" + std::to_string(seq) + "|";
  record.append(500 + (seq * 37) % 3000, static_cast<char>('a' + (seq + partition) % 26));
  return record;
}

std::string LetterUser(uint32_t partition, uint64_t seq) {
  return "p" + std::to_string(partition) + "-s" + std::to_string(seq);
}

// Appends forever (bounded, in case the parent dies) from one thread per partition and
// acknowledges each append with {partition, seq}.
[[noreturn]] void RunLogChild(Store& store, int fd) {
  std::vector<std::thread> writers;
  for (uint32_t p = 0; p < kPartitions; ++p) {
    writers.emplace_back([&store, fd, p] {
      for (uint64_t seq = 1; seq <= 100000; ++seq) {
        std::vector<DeadLetter> letters;
        if (seq % kLetterEvery == 0) {
          letters.push_back(DeadLetter{1, "partition", seq, LetterUser(p, seq), "f", "r", "x"});
        }
        if (!store.Append(p, seq, RecordFor(p, seq), letters, /*sync=*/true).ok()) _exit(12);
        Acknowledge(fd, p, seq);
      }
    });
  }
  for (auto& w : writers) w.join();
  _exit(0);
}

// ---- mode "ckpt" / "ckpt-hang-<S>": checkpoints -------------------------------------------------

// The checkpoint children's partition: checkpoint S (one per log record) changes the users i with
// (i + S) % 3 == 0 and stores their profile as "u<i>@S", so the state committed at any seq is
// known without replaying anything.
constexpr uint64_t kUsers = 12;
constexpr uint64_t kCommitted = 0;         // ack {kCommitted, S}: checkpoint S is committed
constexpr uint64_t kHungBeforeCommit = 1;  // ack {kHungBeforeCommit, S}: profiles of S written

bool ChangesAt(uint64_t user, uint64_t seq) { return (user + seq) % 3 == 0; }
std::string UserId(uint64_t user) { return "u" + std::to_string(user); }
std::string ProfileAt(uint64_t user, uint64_t seq) {
  return UserId(user) + "@" + std::to_string(seq);
}
std::string MetaAt(uint64_t seq) { return "meta@" + std::to_string(seq); }
std::string OperatorStateAt(uint64_t seq) { return "state@" + std::to_string(seq); }

// user id -> (generation, blob): the partition's state committed at `seq`.
using Profiles = std::map<std::string, std::pair<uint64_t, std::string>>;
Profiles StateAt(uint64_t seq) {
  Profiles state;
  for (uint64_t s = 1; s <= seq; ++s) {
    for (uint64_t user = 0; user < kUsers; ++user) {
      if (ChangesAt(user, s)) state[UserId(user)] = {s, ProfileAt(user, s)};
    }
  }
  return state;
}

// Runs checkpoints 1, 2, ... as the engine does (log record, profiles in two calls, commit with
// the meta and an operator state, deletion of the replaced versions), acknowledging each commit.
// With hang_at > 0, stops at checkpoint hang_at after its profiles are written, acknowledges that
// and waits to be killed.
[[noreturn]] void RunCheckpointChild(Store& store, int fd, uint64_t hang_at) {
  for (uint64_t seq = 1; seq <= 100000; ++seq) {
    if (!store.Append(0, seq, "record " + std::to_string(seq), {}, /*sync=*/false).ok()) _exit(20);
    std::vector<std::string> users;
    std::vector<std::string> blobs;
    for (uint64_t user = 0; user < kUsers; ++user) {
      if (!ChangesAt(user, seq)) continue;
      users.push_back(UserId(user));
      blobs.push_back(ProfileAt(user, seq));
    }
    std::vector<std::pair<std::string_view, std::string_view>> pairs;
    for (size_t i = 0; i < users.size(); ++i) pairs.emplace_back(users[i], blobs[i]);
    const size_t half = pairs.size() / 2;
    if (!store.PutProfiles(0, seq, std::span(pairs).first(half)).ok()) _exit(21);
    if (!store.PutProfiles(0, seq, std::span(pairs).subspan(half)).ok()) _exit(22);
    if (seq == hang_at) {
      Acknowledge(fd, kHungBeforeCommit, seq);
      while (true) pause();
    }
    const std::string state = OperatorStateAt(seq);
    const std::pair<std::string_view, std::string_view> states[] = {{"total", state}};
    if (!store.CommitCheckpoint(0, seq, MetaAt(seq), states).ok()) _exit(23);
    for (const std::string& user : users) {
      // The version this one replaced: the same user changes every third checkpoint.
      if (seq > 3 && !store.DeleteProfile(0, user, seq - 3).ok()) _exit(24);
    }
    Acknowledge(fd, kCommitted, seq);
  }
  _exit(0);
}

[[noreturn]] void RunChild(const char* spec) {
  const char* colon = std::strchr(spec, ':');
  if (colon == nullptr) _exit(10);
  const std::string mode(spec, colon);
  char* rest = nullptr;
  const int fd = static_cast<int>(std::strtol(colon + 1, &rest, 10));
  if (rest == nullptr || *rest != ':') _exit(10);
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(rest + 1, kPartitions);
  if (!store.ok()) _exit(11);
  if (mode == "log") RunLogChild(**store, fd);
  if (mode == "ckpt") RunCheckpointChild(**store, fd, 0);
  if (mode.starts_with("ckpt-hang-")) {
    RunCheckpointChild(**store, fd, std::strtoull(mode.c_str() + 10, nullptr, 10));
  }
  _exit(14);
}

// Runs before main in the re-executed child; a no-op in the normal test run.
const bool kIsChild = [] {
  if (const char* spec = std::getenv(kChildEnv)) RunChild(spec);
  return false;
}();

// Starts this binary as a child in `mode` on the store in `dir`, reads its acknowledgements into
// `acks`, SIGKILLs it as soon as kill_now(acks) says so (or after 30 s), and checks that it died
// by that signal and that no acknowledgement was torn.
void RunChildAndKill(const std::string& mode, const std::string& dir,
                     const std::function<bool(const std::vector<Ack>&)>& kill_now,
                     std::vector<Ack>* acks) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);

  // Everything the child needs is prepared before fork: between fork and exec only
  // async-signal-safe calls are allowed.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, kChildEnv, std::strlen(kChildEnv)) != 0) env_strings.emplace_back(*e);
  }
  env_strings.push_back(std::string(kChildEnv) + "=" + mode + ":" + std::to_string(fds[1]) + ":" +
                        dir);
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

  // Read acknowledgements; kill once kill_now says so (or give up after a deadline).
  std::string pending;
  bool killed = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    if (!killed && (kill_now(*acks) || std::chrono::steady_clock::now() > deadline)) {
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
    for (; pending.size() - used >= sizeof(Ack); used += sizeof(Ack)) {
      Ack ack;
      std::memcpy(ack.data(), pending.data() + used, sizeof ack);
      acks->push_back(ack);
    }
    pending.erase(0, used);
  }
  close(fds[0]);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
      << "the child must die by our SIGKILL, not on its own (exit status "
      << (WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1) << ")";
  EXPECT_TRUE(pending.empty()) << "a torn acknowledgement";
}

TEST(StoreCrashTest, SyncedAppendsSurviveKillNineOfTheWritingProcess) {
  ASSERT_FALSE(kIsChild);
  ScopedTempDir dir("kill9");
  constexpr size_t kKillAfterAcks = 400;
  std::vector<Ack> acks;
  RunChildAndKill(
      "log", dir.path(), [&](const std::vector<Ack>& a) { return a.size() >= kKillAfterAcks; },
      &acks);
  if (HasFatalFailure()) return;
  ASSERT_GE(acks.size(), kKillAfterAcks) << "the child acknowledged too few appends before 30 s";
  std::map<uint32_t, std::set<uint64_t>> acked;
  for (const Ack& ack : acks) acked[static_cast<uint32_t>(ack[0])].insert(ack[1]);

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

// What recovery loads: each user's newest stored version with a generation <= max_generation.
Profiles NewestProfiles(Store& store, uint32_t partition, uint64_t max_generation) {
  Profiles out;
  absl::Status s = store.ForEachProfile(
      partition, max_generation,
      [&](std::string_view user, uint64_t generation, std::string_view blob) {
        out[std::string(user)] = {generation, std::string(blob)};  // generation order: newest last
        return absl::OkStatus();
      });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

std::set<uint64_t> StoredGenerations(Store& store, uint32_t partition) {
  std::set<uint64_t> out;
  absl::Status s = store.ForEachProfile(
      partition, UINT64_MAX, [&](std::string_view, uint64_t generation, std::string_view) {
        out.insert(generation);
        return absl::OkStatus();
      });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

// Recovery's view of a store a checkpointing process left: the committed meta and operator state
// belong to the same seq C, ForEachProfile(C) + the newest-version rule is exactly the state
// committed at C, and DeleteProfilesAbove(C) removes whatever an interrupted checkpoint wrote.
void ExpectExactlyTheCommittedState(Store& store, uint64_t committed) {
  absl::StatusOr<Store::CheckpointMeta> meta = store.LoadCheckpointMeta(0);
  ASSERT_TRUE(meta.ok()) << meta.status();
  ASSERT_EQ(meta->seq, committed);
  EXPECT_EQ(meta->blob, MetaAt(committed));
  absl::StatusOr<std::optional<std::string>> state = store.LoadOperatorState(0, "total");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, OperatorStateAt(committed)) << "the operator state is committed with the meta";
  EXPECT_EQ(NewestProfiles(store, 0, committed), StateAt(committed));
  ASSERT_TRUE(store.DeleteProfilesAbove(0, committed).ok());
  const std::set<uint64_t> generations = StoredGenerations(store, 0);
  ASSERT_FALSE(generations.empty());
  EXPECT_LE(*generations.rbegin(), committed) << "an uncommitted generation survived";
  EXPECT_EQ(NewestProfiles(store, 0, UINT64_MAX), StateAt(committed));
}

TEST(StoreCrashTest, KillNineBetweenPutProfilesAndCommitLeavesTheCommittedState) {
  ASSERT_FALSE(kIsChild);
  ScopedTempDir dir("kill9_before_commit");
  constexpr uint64_t kHangAt = 7;
  std::vector<Ack> acks;
  RunChildAndKill(
      "ckpt-hang-" + std::to_string(kHangAt), dir.path(),
      [&](const std::vector<Ack>& a) { return !a.empty() && a.back()[0] == kHungBeforeCommit; },
      &acks);
  if (HasFatalFailure()) return;
  ASSERT_FALSE(acks.empty());
  ASSERT_EQ(acks.back(), (Ack{kHungBeforeCommit, kHangAt}))
      << "the child must be killed after writing generation 7 and before committing it";
  ASSERT_EQ(acks.size(), kHangAt) << "checkpoints 1..6 committed, then the hang";

  absl::StatusOr<std::unique_ptr<Store>> reopened = Store::Open(dir.path(), kPartitions);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  Store& store = **reopened;
  EXPECT_TRUE(StoredGenerations(store, 0).contains(kHangAt))
      << "the killed process's uncommitted generation is on disk (a process crash loses no "
         "write), so the test really exercises the newest-version rule <= the committed seq";
  ExpectExactlyTheCommittedState(store, kHangAt - 1);
}

TEST(StoreCrashTest, KillNineAtAnyPointOfCheckpointingLeavesTheStateOfTheLastCommit) {
  ASSERT_FALSE(kIsChild);
  ScopedTempDir dir("kill9_checkpoints");
  constexpr size_t kKillAfterCommits = 40;
  std::vector<Ack> acks;
  RunChildAndKill(
      "ckpt", dir.path(), [&](const std::vector<Ack>& a) { return a.size() >= kKillAfterCommits; },
      &acks);
  if (HasFatalFailure()) return;
  ASSERT_GE(acks.size(), kKillAfterCommits) << "too few checkpoints before 30 s";
  const uint64_t last_acked = acks.back()[1];

  absl::StatusOr<std::unique_ptr<Store>> reopened = Store::Open(dir.path(), kPartitions);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  Store& store = **reopened;
  absl::StatusOr<Store::CheckpointMeta> meta = store.LoadCheckpointMeta(0);
  ASSERT_TRUE(meta.ok()) << meta.status();
  // The kill lands anywhere in the loop: the committed seq is the last acknowledged one, or the
  // next if the kill came between its commit and its acknowledgement.
  EXPECT_GE(meta->seq, last_acked) << "an acknowledged (synced) commit was lost";
  EXPECT_LE(meta->seq, last_acked + 1);
  ExpectExactlyTheCommittedState(store, meta->seq);
}

}  // namespace
}  // namespace persona
