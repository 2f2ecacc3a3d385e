// ServerProcess: a real `persona serve` child process for integration tests. Start forks and execs
// PERSONA_BINARY `serve --data DIR --port 0 [--config FILE] [extra args]`, waits for the
// `listening on http://ADDR:PORT` line on its stdout and reads the port from it. A thread keeps
// draining the child's stdout and stderr into a bounded buffer, so a chatty access log can never
// block the server on a full pipe, and the tail of that output goes into failure messages.
// The destructor kills (SIGKILL) and reaps a child that is still running.
//
// Also here, because every integration test needs them: a config file writer (engine keys,
// [server] keys, [[server.api_keys]] with the SHA-256 of test secrets), a scoped temporary
// directory, and a runner for one-shot `persona` commands (e.g. `deadletter list`).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "serve/testing/http_client.h"

namespace persona::serve::testing_util {

// The path of the `persona` binary the tests run (PERSONA_BINARY).
std::string PersonaBinary();

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class ScopedTempDir {
 public:
  explicit ScopedTempDir(std::string_view prefix);
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string File(std::string_view name) const;

 private:
  std::string path_;
};

struct TestApiKey {
  std::string name;
  std::string secret;               // sent by the test; only its SHA-256 goes into the config
  std::vector<std::string> scopes;  // "ingest", "read", "admin"
};

// What goes into a test config file. `engine_toml` holds top-level engine keys
// (`queue_capacity_events = 64`, `sync = "always"`), `server_toml` keys of the [server] table
// (`max_body_bytes = 4096`); both are pasted verbatim, one key per line.
struct TestConfig {
  std::string engine_toml;
  std::string server_toml;
  std::vector<TestApiKey> api_keys;
};

// The TOML text of `config` (engine keys, then [server], then one [[server.api_keys]] per key).
std::string ConfigToml(const TestConfig& config);
absl::Status WriteConfigFile(const std::string& path, const TestConfig& config);

struct ServerOptions {
  std::string data_dir;     // required
  std::string config_file;  // "" = no --config
  std::vector<std::string> extra_args;
  // How long to wait for the "listening on" line (recovery under ASan can be slow).
  std::chrono::milliseconds start_timeout{60000};
};

// How a child process ended.
struct ProcessExit {
  bool exited = false;  // exited normally (then `code`), else killed by `signal`
  int code = -1;
  int signal = 0;
  std::string ToString() const;  // "exit 0", "signal 9"
};

class ServerProcess {
 public:
  // Starts the server and waits until it listens. On failure (the child exited, or no "listening
  // on" line before the timeout) the child is killed and the error carries its output.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const ServerOptions& options);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const ServerOptions& options() const { return options_; }
  // "http://host:port".
  std::string BaseUrl() const;
  // A client connected to this server (connection errors surface on its first request).
  HttpClient Client() const;

  // Sends `signal` to the child (no-op once it was reaped).
  void Terminate(int signal);
  // Waits for the child to exit and reaps it. DeadlineExceeded if it is still running after
  // `timeout` (it is left running; the destructor kills it).
  absl::StatusOr<ProcessExit> WaitExit(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0 && !reaped_; }

  // Everything the child wrote so far: stdout, then stderr, each cut to its last 256 KiB.
  std::string Output() const;
  // The last `max_bytes` of Output(), for assertion messages.
  std::string OutputTail(size_t max_bytes = 4000) const;

 private:
  ServerProcess() = default;
  void Drain();  // thread body: reads both pipes until EOF on both

  ServerOptions options_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  std::string host_;
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  std::string stdout_text_;  // guarded by mu_
  std::string stderr_text_;  // guarded by mu_
  std::thread drainer_;
};

// Runs `persona <args...>` to completion and returns its exit status and stdout (stderr is
// appended after a "--- stderr ---" line only when the command fails).
struct CommandResult {
  ProcessExit exit;
  std::string output;
};
absl::StatusOr<CommandResult> RunPersona(
    const std::vector<std::string>& args,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(120000));

}  // namespace persona::serve::testing_util
