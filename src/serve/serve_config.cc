#include "serve/serve_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "common/time_util.h"
#include "engine/toml_reading.h"

namespace persona::serve {
namespace {

// Reads the [server] table key by key; every key it does not know is an error naming it.
class ServerTableReader {
 public:
  ServerTableReader(const toml::table& table, std::string_view origin)
      : table_(table), origin_(origin) {}

  absl::Status Read(ServeConfig* c) {
    HttpServerOptions& h = c->http;
    Str("bind", &h.bind_address);
    Int("port", 0, 65535, [&](int64_t v) { h.port = static_cast<uint16_t>(v); });
    Int("threads", 0, 256, [&](int64_t v) { h.threads = static_cast<uint32_t>(v); });
    Int("max_body_bytes", 1024, int64_t{1} << 32, [&](int64_t v) { h.max_body_bytes = v; });
    Int("max_header_bytes", 1024, 1 << 20,
        [&](int64_t v) { h.max_header_bytes = static_cast<uint32_t>(v); });
    Int("max_connections", 1, 1000000,
        [&](int64_t v) { h.max_connections = static_cast<uint32_t>(v); });
    Duration("read_timeout", &h.read_timeout);
    Duration("write_timeout", &h.write_timeout);
    Duration("idle_timeout", &h.idle_timeout);
    Duration("drain_timeout", &c->drain_timeout);
    Str("tls_cert", &h.tls_cert_file);
    Str("tls_key", &h.tls_key_file);
    Int("max_batch_events", 1, 1000000,
        [&](int64_t v) { c->max_batch_events = static_cast<uint32_t>(v); });
    Int("max_batch_get", 1, 100000,
        [&](int64_t v) { c->max_batch_get = static_cast<uint32_t>(v); });
    Bool("strict", &c->strict);
    Bool("metrics_public", &c->metrics_public);
    Str("access_log", &c->access_log);
    Str("web_root", &c->web_root);
    Duration("audience_reconcile_interval", &c->audience_reconcile_interval);
    ApiKeys(c);
    if (!error_.ok()) return error_;
    for (auto&& [name, node] : table_) {
      const std::string key(name.str());
      if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
        return absl::InvalidArgumentError("unknown key 'server." + key + "' in " +
                                          std::string(origin_));
      }
    }
    if (h.tls_cert_file.empty() != h.tls_key_file.empty()) {
      return absl::InvalidArgumentError("server.tls_cert and server.tls_key go together (" +
                                        std::string(origin_) + ")");
    }
    return absl::OkStatus();
  }

 private:
  const toml::node* Get(std::string_view key) {
    known_.emplace_back(key);
    return table_.get(key);
  }
  void Fail(std::string_view key, std::string_view expected, const toml::node& node) {
    if (!error_.ok()) return;
    error_ = absl::InvalidArgumentError(
        "'server." + std::string(key) + "' in " + std::string(origin_) + ": expected " +
        std::string(expected) + " but found " + DescribeTomlValue(node));
  }
  void Str(std::string_view key, std::string* out) {
    const toml::node* n = Get(key);
    if (n == nullptr) return;
    if (auto v = n->value<std::string>()) {
      *out = *v;
    } else {
      Fail(key, "a string", *n);
    }
  }
  void Bool(std::string_view key, bool* out) {
    const toml::node* n = Get(key);
    if (n == nullptr) return;
    if (const auto* v = n->as_boolean()) {
      *out = v->get();
    } else {
      Fail(key, "true or false", *n);
    }
  }
  template <typename Fn>
  void Int(std::string_view key, int64_t lo, int64_t hi, Fn set) {
    const toml::node* n = Get(key);
    if (n == nullptr) return;
    const auto* v = n->as_integer();
    if (v == nullptr || v->get() < lo || v->get() > hi) {
      Fail(key, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", *n);
      return;
    }
    set(v->get());
  }
  void Duration(std::string_view key, std::chrono::milliseconds* out) {
    const toml::node* n = Get(key);
    if (n == nullptr) return;
    std::optional<int64_t> ms;
    if (auto s = n->value<std::string>()) ms = ParseDuration(*s);
    if (const auto* i = n->as_integer()) ms = i->get();  // plain integers are milliseconds
    if (!ms || *ms <= 0) {
      Fail(key, "a positive duration such as \"500ms\", \"10s\" or \"2m\"", *n);
      return;
    }
    *out = std::chrono::milliseconds(*ms);
  }
  void ApiKeys(ServeConfig* c) {
    const toml::node* n = Get("api_keys");
    if (n == nullptr) return;
    const toml::array* keys = n->as_array();
    if (keys == nullptr) {
      Fail("api_keys", "an array of tables ([[server.api_keys]])", *n);
      return;
    }
    c->api_keys.clear();
    for (size_t i = 0; i < keys->size() && error_.ok(); ++i) {
      const std::string where = "server.api_keys[" + std::to_string(i) + "]";
      const toml::table* t = (*keys)[i].as_table();
      if (t == nullptr) {
        Fail("api_keys", "tables with name, sha256 and scopes", (*keys)[i]);
        return;
      }
      ApiKeyConfig key;
      for (auto&& [name, value] : *t) {
        const std::string_view field = name.str();
        if (field == "name" && value.is_string()) {
          key.name = *value.value<std::string>();
        } else if (field == "sha256" && value.is_string()) {
          key.sha256 = *value.value<std::string>();
        } else if (field == "scopes" && value.is_array()) {
          for (const auto& s : *value.as_array()) {
            if (!s.is_string()) {
              error_ = absl::InvalidArgumentError(where + ".scopes in " + std::string(origin_) +
                                                  ": expected strings");
              return;
            }
            key.scopes.push_back(*s.value<std::string>());
          }
        } else {
          error_ = absl::InvalidArgumentError("unknown or mistyped key '" + where + "." +
                                              std::string(field) + "' in " + std::string(origin_) +
                                              " (expected name = \"..\", sha256 = \"<64 hex>\", " +
                                              "scopes = [\"ingest\", \"read\", \"admin\"])");
          return;
        }
      }
      c->api_keys.push_back(std::move(key));
    }
  }

  const toml::table& table_;
  std::string_view origin_;
  std::vector<std::string> known_;
  absl::Status error_;
};

}  // namespace

absl::Status LoadServeConfigText(std::string_view toml_text, std::string_view origin,
                                 ServeConfig* config) {
  absl::StatusOr<toml::table> parsed = ParseTomlText(toml_text, origin);
  if (!parsed.ok()) return parsed.status();
  const toml::table& root = *parsed;
  const toml::node* server = root.get("server");
  if (server == nullptr) return absl::OkStatus();
  const toml::table* table = server->as_table();
  if (table == nullptr) {
    return absl::InvalidArgumentError("'server' in " + std::string(origin) + ": expected a table");
  }
  // Work on a copy so that a file with an error changes nothing.
  ServeConfig updated = *config;
  if (absl::Status s = ServerTableReader(*table, origin).Read(&updated); !s.ok()) return s;
  *config = std::move(updated);
  return absl::OkStatus();
}

absl::Status LoadServeConfigFile(const std::string& path, ServeConfig* config) {
  absl::StatusOr<std::string> text = ReadConfigFile(path);
  if (!text.ok()) return text.status();
  return LoadServeConfigText(*text, path, config);
}

}  // namespace persona::serve
