#include "serve/testing/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "serve/api_keys.h"

namespace persona::serve::testing_util {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxKeptOutput = 256 << 10;
constexpr std::string_view kListeningPrefix = "listening on http://";

void AppendBounded(std::string* out, std::string_view bytes) {
  out->append(bytes);
  if (out->size() > kMaxKeptOutput + (kMaxKeptOutput >> 2)) {
    out->erase(0, out->size() - kMaxKeptOutput);
  }
}

ProcessExit FromWaitStatus(int status) {
  ProcessExit e;
  if (WIFEXITED(status)) {
    e.exited = true;
    e.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    e.signal = WTERMSIG(status);
  }
  return e;
}

// TOML basic string: quotes and backslashes escaped (test values never hold control bytes).
std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

// Forks and execs `argv` with stdin from /dev/null and stdout/stderr into new pipes (read ends
// returned, close-on-exec). The child dies with the test process (PR_SET_PDEATHSIG) so that a
// crashed test leaves no server behind.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& args, int* stdout_fd, int* stderr_fd) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return absl::InternalError("pipe2 failed");
  }
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  *stdout_fd = out[0];
  *stderr_fd = err[0];
  return pid;
}

// Parses "listening on http://ADDR:PORT" (ADDR may be a bracketed IPv6 address).
bool ParseListeningLine(std::string_view line, std::string* host, uint16_t* port) {
  const size_t at = line.find(kListeningPrefix);
  if (at == std::string_view::npos) return false;
  std::string_view rest = line.substr(at + kListeningPrefix.size());
  while (!rest.empty() && (rest.back() == '\r' || rest.back() == ' ' || rest.back() == '/')) {
    rest.remove_suffix(1);
  }
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view addr = rest.substr(0, colon);
  std::string_view port_text = rest.substr(colon + 1);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || value == 0 ||
      value > 65535) {
    return false;
  }
  if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']') {
    addr = addr.substr(1, addr.size() - 2);
  }
  *host = std::string(addr);
  *port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

std::string PersonaBinary() { return PERSONA_BINARY; }

std::string ProcessExit::ToString() const {
  return exited ? absl::StrCat("exit ", code) : absl::StrCat("signal ", signal);
}

ScopedTempDir::ScopedTempDir(std::string_view prefix) {
  const char* base = getenv("TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp", "/persona_",
                                     std::string(prefix), "_XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    path_ = pattern;  // the test's first use of it fails with a clear path
    return;
  }
  path_ = pattern;
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string ScopedTempDir::File(std::string_view name) const {
  return absl::StrCat(path_, "/", std::string(name));
}

std::string ConfigToml(const TestConfig& config) {
  std::string toml = config.engine_toml;
  if (!toml.empty() && toml.back() != '\n') toml += '\n';
  toml += "\n[server]\n";
  toml += config.server_toml;
  if (!toml.empty() && toml.back() != '\n') toml += '\n';
  for (const TestApiKey& key : config.api_keys) {
    std::vector<std::string> scopes;
    for (const auto& s : key.scopes) scopes.push_back(TomlString(s));
    absl::StrAppend(&toml, "\n[[server.api_keys]]\nname = ", TomlString(key.name),
                    "\nsha256 = ", TomlString(ApiKeys::Sha256Hex(key.secret)), "\nscopes = [",
                    absl::StrJoin(scopes, ", "), "]\n");
  }
  return toml;
}

absl::Status WriteConfigFile(const std::string& path, const TestConfig& config) {
  std::ofstream out(path, std::ios::trunc);
  out << ConfigToml(config);
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(const ServerOptions& options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("ServerOptions: data_dir");
  if (access(PERSONA_BINARY, X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no executable at ", PERSONA_BINARY, ": build the persona target first"));
  }
  std::vector<std::string> args = {PERSONA_BINARY,   "serve",  "--data",
                                   options.data_dir, "--port", "0"};
  if (!options.config_file.empty()) {
    args.push_back("--config");
    args.push_back(options.config_file);
  }
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());

  std::unique_ptr<ServerProcess> p(new ServerProcess());
  p->options_ = options;
  auto pid = Spawn(args, &p->stdout_fd_, &p->stderr_fd_);
  if (!pid.ok()) return pid.status();
  p->pid_ = *pid;
  p->drainer_ = std::thread([raw = p.get()] { raw->Drain(); });

  const auto deadline = Clock::now() + options.start_timeout;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(p->mu_);
      if (p->port_ != 0) return p;
    }
    int status = 0;
    const pid_t done = waitpid(p->pid_, &status, WNOHANG);
    if (done == p->pid_) {
      p->reaped_ = true;
      if (p->drainer_.joinable()) p->drainer_.join();
      // The line may have been written just before the exit.
      if (p->port_ != 0) {
        return absl::InternalError(absl::StrCat("persona serve listened, then ended (",
                                                FromWaitStatus(status).ToString(), "):\n",
                                                p->OutputTail()));
      }
      return absl::InternalError(
          absl::StrCat("persona serve ended before listening (", FromWaitStatus(status).ToString(),
                       "): ", absl::StrJoin(args, " "), "\n", p->OutputTail()));
    }
    if (Clock::now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "persona serve printed no \"listening on\" line within ", options.start_timeout.count(),
          " ms: ", absl::StrJoin(args, " "), "\n", p->OutputTail()));
      // `p` goes out of scope here: the destructor kills the child.
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void ServerProcess::Drain() {
  pollfd fds[2] = {{stdout_fd_, POLLIN, 0}, {stderr_fd_, POLLIN, 0}};
  std::string line_buffer;  // stdout bytes not yet ended by '\n' (only until the port is known)
  int open = 2;
  while (open > 0) {
    const int ready = poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char chunk[8192];
      const ssize_t n = read(fds[i].fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1;  // poll ignores negative descriptors
        --open;
        continue;
      }
      const std::string_view bytes(chunk, static_cast<size_t>(n));
      std::lock_guard<std::mutex> lock(mu_);
      if (i == 0) {
        AppendBounded(&stdout_text_, bytes);
        if (port_ == 0) {
          line_buffer.append(bytes);
          size_t eol;
          while ((eol = line_buffer.find('\n')) != std::string::npos) {
            std::string host;
            uint16_t port = 0;
            if (ParseListeningLine(std::string_view(line_buffer).substr(0, eol), &host, &port)) {
              host_ = host;
              port_ = port;
              line_buffer.clear();
              break;
            }
            line_buffer.erase(0, eol + 1);
          }
        }
      } else {
        AppendBounded(&stderr_text_, bytes);
      }
    }
  }
}

ServerProcess::~ServerProcess() {
  if (running()) {
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
  }
  if (drainer_.joinable()) drainer_.join();
  if (stdout_fd_ >= 0) close(stdout_fd_);
  if (stderr_fd_ >= 0) close(stderr_fd_);
}

std::string ServerProcess::BaseUrl() const { return absl::StrCat("http://", host_, ":", port_); }

HttpClient ServerProcess::Client() const { return HttpClient(host_, port_); }

void ServerProcess::Terminate(int signal) {
  if (running()) kill(pid_, signal);
}

absl::StatusOr<ProcessExit> ServerProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("no child");
  if (reaped_) return absl::FailedPreconditionError("already reaped");
  const auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      reaped_ = true;
      if (drainer_.joinable()) drainer_.join();
      return FromWaitStatus(status);
    }
    if (done < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("waitpid: ", std::strerror(errno)));
    }
    if (Clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("persona serve still running after ", timeout.count(), " ms"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string ServerProcess::Output() const {
  std::lock_guard<std::mutex> lock(mu_);
  return absl::StrCat("--- stdout ---\n", stdout_text_, "--- stderr ---\n", stderr_text_);
}

std::string ServerProcess::OutputTail(size_t max_bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  // Stderr (logs, sanitizer reports) matters more than stdout; give it most of the room.
  const size_t out_room = std::min(stdout_text_.size(), max_bytes / 4);
  const size_t err_room = std::min(stderr_text_.size(), max_bytes - out_room);
  return absl::StrCat(
      "--- stdout (tail) ---\n", stdout_text_.substr(stdout_text_.size() - out_room),
      "\n--- stderr (tail) ---\n", stderr_text_.substr(stderr_text_.size() - err_room));
}

absl::StatusOr<CommandResult> RunPersona(const std::vector<std::string>& args,
                                         std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {PERSONA_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  int out_fd = -1, err_fd = -1;
  auto pid = Spawn(argv, &out_fd, &err_fd);
  if (!pid.ok()) return pid.status();
  std::string out, err;
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open = 2;
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  while (open > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    const int ready = poll(fds, 2, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char chunk[8192];
      const ssize_t n = read(fds[i].fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1;
        --open;
        continue;
      }
      (i == 0 ? out : err).append(chunk, static_cast<size_t>(n));
    }
  }
  if (timed_out) kill(*pid, SIGKILL);
  int status = 0;
  while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  close(out_fd);
  close(err_fd);
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("persona ", absl::StrJoin(args, " "), " did not finish; stderr:\n", err));
  }
  CommandResult r;
  r.exit = FromWaitStatus(status);
  r.output = std::move(out);
  if (!(r.exit.exited && r.exit.code == 0)) absl::StrAppend(&r.output, "--- stderr ---\n", err);
  return r;
}

}  // namespace persona::serve::testing_util
