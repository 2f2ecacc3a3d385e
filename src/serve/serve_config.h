// Service configuration: the [server] table of the same TOML file that configures the engine
// (config/persona.toml lists every key with its default). Unknown keys are errors naming the key.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "serve/http_server.h"

namespace persona::serve {

struct ApiKeyConfig {
  std::string name;
  std::string sha256;  // hex of SHA-256(secret); the secret is never configured
  std::vector<std::string> scopes;
};

struct ServeConfig {
  HttpServerOptions http;
  std::chrono::milliseconds drain_timeout{10000};
  uint32_t max_batch_events = 10000;  // per POST /v1/events
  uint32_t max_batch_get = 1000;      // per POST /v1/profiles:batchGet
  bool strict = false;                // default for ?strict= on POST /v1/events
  bool metrics_public = true;         // /metrics without a key
  std::string access_log = "-";       // "-" stderr, "" off, else a file path
  // The built dashboard (web/dist); "" = found next to the binary (serve/static_files.h).
  std::string web_root;
  // Saved audiences are re-evaluated over every profile this often, so that membership that
  // changes with time alone (lifecycle, windows, recency) is caught up.
  std::chrono::milliseconds audience_reconcile_interval{60000};
  std::vector<ApiKeyConfig> api_keys;
};

// Reads the [server] table of a TOML file / text into `config` (absent keys keep their values).
absl::Status LoadServeConfigFile(const std::string& path, ServeConfig* config);
absl::Status LoadServeConfigText(std::string_view toml, std::string_view origin,
                                 ServeConfig* config);

}  // namespace persona::serve
