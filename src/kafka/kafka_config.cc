#include "kafka/kafka_config.h"

#include <toml++/toml.h>

#include "absl/status/statusor.h"
#include "common/time_util.h"
#include "engine/toml_reading.h"

namespace persona {
namespace {

absl::Status BadValue(std::string_view key, std::string_view expected, const toml::node& node,
                      std::string_view origin) {
  return absl::InvalidArgumentError("'kafka." + std::string(key) + "' in " + std::string(origin) +
                                    ": expected " + std::string(expected) + " but found " +
                                    DescribeTomlValue(node));
}

std::optional<std::chrono::milliseconds> ReadDuration(const toml::node& node) {
  std::optional<int64_t> ms;
  if (auto s = node.value<std::string>()) ms = ParseDuration(*s);
  if (const auto* i = node.as_integer()) ms = i->get();  // plain integers are milliseconds
  if (!ms || *ms <= 0) return std::nullopt;
  return std::chrono::milliseconds(*ms);
}

absl::Status ReadTable(const toml::table& table, std::string_view origin, KafkaConfig* c) {
  for (auto&& [name, node] : table) {
    const std::string key(name.str());
    if (key == "brokers" || key == "topic" || key == "group" || key == "audience_topic" ||
        key == "cluster_topic" || key == "advertised_url" || key == "partitioner" ||
        key == "profile_topic" || key == "profile_fields" || key == "changelog_topic") {
      auto v = node.value<std::string>();
      if (!v) return BadValue(key, "a string", node, origin);
      (key == "brokers"           ? c->brokers
       : key == "topic"           ? c->topic
       : key == "audience_topic"  ? c->audience_topic
       : key == "cluster_topic"   ? c->cluster_topic
       : key == "changelog_topic" ? c->changelog_topic
       : key == "advertised_url"  ? c->advertised_url
       : key == "partitioner"     ? c->partitioner
       : key == "profile_topic"   ? c->profile_topic
       : key == "profile_fields"  ? c->profile_fields
                                  : c->group) = *v;
      if (key == "partitioner" && *v != "murmur2" && *v != "crc32") {
        return BadValue(key, "\"murmur2\" or \"crc32\"", node, origin);
      }
      if (key == "advertised_url" && !v->empty() && v->rfind("http://", 0) != 0) {
        return BadValue(key, "an http:// URL (instances forward requests over plain HTTP)", node,
                        origin);
      }
    } else if (key == "cluster" || key == "changelog") {
      auto v = node.value<bool>();
      if (!v) return BadValue(key, "true or false", node, origin);
      (key == "cluster" ? c->cluster : c->changelog) = *v;
    } else if (key == "max_batch_events") {
      const auto* v = node.as_integer();
      if (v == nullptr || v->get() < 1 || v->get() > 1000000) {
        return BadValue(key, "an integer in [1, 1000000]", node, origin);
      }
      c->max_batch_events = static_cast<uint32_t>(v->get());
    } else if (key == "linger" || key == "commit_interval" || key == "share_interval") {
      auto d = ReadDuration(node);
      if (!d) return BadValue(key, "a positive duration such as \"5ms\" or \"1s\"", node, origin);
      (key == "linger"            ? c->linger
       : key == "commit_interval" ? c->commit_interval
                                  : c->share_interval) = *d;
    } else if (key == "client") {
      const toml::table* client = node.as_table();
      if (client == nullptr) return BadValue(key, "a table of librdkafka properties", node, origin);
      for (auto&& [prop, value] : *client) {
        std::string text;
        if (auto s = value.value<std::string>()) {
          text = *s;
        } else if (const auto* i = value.as_integer()) {
          text = std::to_string(i->get());
        } else if (const auto* b = value.as_boolean()) {
          text = b->get() ? "true" : "false";
        } else {
          return BadValue("client." + std::string(prop.str()), "a string, integer or boolean",
                          value, origin);
        }
        c->client.emplace_back(std::string(prop.str()), std::move(text));
      }
    } else {
      return absl::InvalidArgumentError("unknown key 'kafka." + key + "' in " +
                                        std::string(origin) +
                                        " (librdkafka properties go in [kafka.client])");
    }
  }
  if (c->topic.empty()) return absl::InvalidArgumentError("'kafka.topic' must not be empty");
  if (c->group.empty()) return absl::InvalidArgumentError("'kafka.group' must not be empty");
  return absl::OkStatus();
}

}  // namespace

absl::Status LoadKafkaConfigText(std::string_view toml_text, std::string_view origin,
                                 KafkaConfig* config) {
  absl::StatusOr<toml::table> parsed = ParseTomlText(toml_text, origin);
  if (!parsed.ok()) return parsed.status();
  const toml::node* kafka = parsed->get("kafka");
  if (kafka == nullptr) return absl::OkStatus();
  const toml::table* table = kafka->as_table();
  if (table == nullptr) {
    return absl::InvalidArgumentError("'kafka' in " + std::string(origin) + ": expected a table");
  }
  KafkaConfig updated = *config;  // a file with an error changes nothing
  if (absl::Status s = ReadTable(*table, origin, &updated); !s.ok()) return s;
  *config = std::move(updated);
  return absl::OkStatus();
}

absl::Status LoadKafkaConfigFile(const std::string& path, KafkaConfig* config) {
  absl::StatusOr<std::string> text = ReadConfigFile(path);
  if (!text.ok()) return text.status();
  return LoadKafkaConfigText(*text, path, config);
}

}  // namespace persona
