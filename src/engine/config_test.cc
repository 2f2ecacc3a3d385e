#include "engine/config.h"

#include <toml++/toml.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace persona {
namespace {

using ::testing::StartsWith;

// Counts the members of an aggregate: the largest n for which T{x1, ..., xn} compiles with
// initializers convertible to anything. Lets a test notice a field added to a config struct that
// the TOML loader (and persona.toml) do not know about yet.
struct AnyField {
  template <typename T>
  operator T() const;
};
template <typename T, typename... Fields>
constexpr size_t CountFields() {
  if constexpr (requires { T{Fields{}..., AnyField{}}; }) {
    return CountFields<T, Fields..., AnyField>();
  } else {
    return sizeof...(Fields);
  }
}

std::string ReferenceConfigPath() {
  return (std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "config" /
          "persona.toml")
      .string();
}

// Every key set to a value different from its default.
constexpr std::string_view kEveryKeyChanged = R"(
data_dir = "/var/lib/persona"
partitions = 8
sync = "always"
sync_interval = "250ms"
max_batch_events = 1024
queue_capacity_events = 1000
checkpoint_interval = "5m"
checkpoint_every_events = 0
checkpoint_on_close = false
dedup_window = "2h"
dedup_recent_events = 500
wall_clock = true
tag_rules_file = "config/tags.rules"

[store]
log_retention = "2d"
log_retention_bytes = 1073741824
log_segment_bytes = 1048576

[limits]
max_id_length = 64
max_category_length = 128
max_query_length = 256
max_text_length = 4096
max_attrs_length = 2048
max_future_skew = "6h"

[profile]
half_life = "3d"
session_gap = "45m"
sequence_length = 50
category_capacity = 32
brand_capacity = 8
item_capacity = 12
keyword_capacity = 20
new = "3d"
dormant_after = "21d"
churned_after = "90d"

[profile.weights]
view = 0.5
click = 2
search = 1.5
cart = 4
remove_cart = 1
fav = 3
purchase = 10
review = 2.5
refund = 0.25
)";

void ExpectSameConfig(const EngineConfig& a, const EngineConfig& b) {
  EXPECT_EQ(a.data_dir, b.data_dir);
  EXPECT_EQ(a.partitions, b.partitions);
  EXPECT_EQ(a.sync, b.sync);
  EXPECT_EQ(a.sync_interval_ms, b.sync_interval_ms);
  EXPECT_EQ(a.max_batch_events, b.max_batch_events);
  EXPECT_EQ(a.queue_capacity_events, b.queue_capacity_events);
  EXPECT_EQ(a.checkpoint_interval_ms, b.checkpoint_interval_ms);
  EXPECT_EQ(a.checkpoint_every_events, b.checkpoint_every_events);
  EXPECT_EQ(a.checkpoint_on_close, b.checkpoint_on_close);
  EXPECT_EQ(a.dedup_window_ms, b.dedup_window_ms);
  EXPECT_EQ(a.dedup_recent_events, b.dedup_recent_events);
  EXPECT_EQ(a.wall_clock, b.wall_clock);
  EXPECT_EQ(a.tag_rules_file, b.tag_rules_file);
  EXPECT_EQ(a.log_retention_ms, b.log_retention_ms);
  EXPECT_EQ(a.log_retention_bytes, b.log_retention_bytes);
  EXPECT_EQ(a.log_segment_bytes, b.log_segment_bytes);
  EXPECT_EQ(a.limits.max_id_length, b.limits.max_id_length);
  EXPECT_EQ(a.limits.max_category_length, b.limits.max_category_length);
  EXPECT_EQ(a.limits.max_query_length, b.limits.max_query_length);
  EXPECT_EQ(a.limits.max_text_length, b.limits.max_text_length);
  EXPECT_EQ(a.limits.max_attrs_length, b.limits.max_attrs_length);
  EXPECT_EQ(a.limits.max_future_skew_ms, b.limits.max_future_skew_ms);
  EXPECT_EQ(a.profile.half_life_ms, b.profile.half_life_ms);
  EXPECT_EQ(a.profile.type_weight, b.profile.type_weight);
  EXPECT_EQ(a.profile.session_gap_ms, b.profile.session_gap_ms);
  EXPECT_EQ(a.profile.sequence_length, b.profile.sequence_length);
  EXPECT_EQ(a.profile.category_capacity, b.profile.category_capacity);
  EXPECT_EQ(a.profile.brand_capacity, b.profile.brand_capacity);
  EXPECT_EQ(a.profile.item_capacity, b.profile.item_capacity);
  EXPECT_EQ(a.profile.keyword_capacity, b.profile.keyword_capacity);
  EXPECT_EQ(a.profile.new_ms, b.profile.new_ms);
  EXPECT_EQ(a.profile.dormant_after_ms, b.profile.dormant_after_ms);
  EXPECT_EQ(a.profile.churned_after_ms, b.profile.churned_after_ms);
}

// The dotted names of all values in a TOML document.
std::set<std::string> LeafKeys(const toml::table& table, const std::string& prefix = "") {
  std::set<std::string> keys;
  for (auto&& [name, node] : table) {
    const std::string key = prefix + std::string(name.str());
    // [server] belongs to the HTTP service (serve_config_test checks it against ServeConfig),
    // [recommend] to the recommender (recommend_config_test), [kafka] to the Kafka source
    // (kafka_config_test).
    if (key == "server" || key == "recommend" || key == "kafka") continue;
    if (const toml::table* nested = node.as_table()) {
      keys.merge(LeafKeys(*nested, key + "."));
    } else {
      keys.insert(key);
    }
  }
  return keys;
}

std::string ErrorOf(std::string_view toml_text) {
  EngineConfig config;
  absl::Status status = LoadConfigText(toml_text, "persona.toml", &config);
  if (status.ok()) return "OK";
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  return std::string(status.message());
}

TEST(ConfigTest, LoaderAndTheseTestsKnowEveryConfigField) {
  // When one of these fails, a field was added or removed: update ReadAll in config.cc,
  // config/persona.toml, kEveryKeyChanged and ExpectSameConfig, then the count here.
  // (kafka_routing and kafka_partitioner are no engine file keys: `persona serve` sets them from
  // the [kafka] table.)
  EXPECT_EQ(CountFields<EngineConfig>(), 20u);
  EXPECT_EQ(CountFields<ValidationLimits>(), 6u);
  EXPECT_EQ(CountFields<ProfileConfig>(), 11u);
}

TEST(ConfigTest, EveryKeySetsItsField) {
  EngineConfig config;
  ASSERT_TRUE(LoadConfigText(kEveryKeyChanged, "all.toml", &config).ok());
  EXPECT_EQ(config.data_dir, "/var/lib/persona");
  EXPECT_EQ(config.partitions, 8u);
  EXPECT_EQ(config.sync, SyncPolicy::kAlways);
  EXPECT_EQ(config.sync_interval_ms, 250);
  EXPECT_EQ(config.max_batch_events, 1024u);
  EXPECT_EQ(config.queue_capacity_events, 1000u);
  EXPECT_EQ(config.checkpoint_interval_ms, 5 * kMinuteMs);
  EXPECT_EQ(config.checkpoint_every_events, 0u);
  EXPECT_FALSE(config.checkpoint_on_close);
  EXPECT_EQ(config.dedup_window_ms, 2 * kHourMs);
  EXPECT_EQ(config.dedup_recent_events, 500u);
  EXPECT_TRUE(config.wall_clock);
  EXPECT_EQ(config.tag_rules_file, "config/tags.rules");
  EXPECT_EQ(config.limits.max_id_length, 64u);
  EXPECT_EQ(config.limits.max_category_length, 128u);
  EXPECT_EQ(config.limits.max_query_length, 256u);
  EXPECT_EQ(config.limits.max_text_length, 4096u);
  EXPECT_EQ(config.limits.max_attrs_length, 2048u);
  EXPECT_EQ(config.limits.max_future_skew_ms, 6 * kHourMs);
  EXPECT_EQ(config.profile.half_life_ms, 3 * kDayMs);
  EXPECT_EQ(config.profile.session_gap_ms, 45 * kMinuteMs);
  EXPECT_EQ(config.profile.sequence_length, 50u);
  EXPECT_EQ(config.profile.category_capacity, 32u);
  EXPECT_EQ(config.profile.brand_capacity, 8u);
  EXPECT_EQ(config.profile.item_capacity, 12u);
  EXPECT_EQ(config.profile.keyword_capacity, 20u);
  EXPECT_EQ(config.profile.new_ms, 3 * kDayMs);
  EXPECT_EQ(config.profile.dormant_after_ms, 21 * kDayMs);
  EXPECT_EQ(config.profile.churned_after_ms, 90 * kDayMs);
  const std::array<double, kEventTypeCount> weights = {0.5, 2, 1.5, 4, 1, 3, 10, 2.5, 0.25};
  EXPECT_EQ(config.profile.type_weight, weights);
}

TEST(ConfigTest, ReferenceFileSetsEveryKeyToItsDefault) {
  const std::string path = ReferenceConfigPath();
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " is part of the repository";
  // Start from all-non-default values: a key missing from persona.toml would leave one behind.
  EngineConfig config;
  ASSERT_TRUE(LoadConfigText(kEveryKeyChanged, "all.toml", &config).ok());
  absl::Status status = LoadConfigFile(path, &config);
  ASSERT_TRUE(status.ok()) << status;
  ExpectSameConfig(config, EngineConfig{});
  // ... and it lists exactly the keys this test sets, no more.
  EXPECT_EQ(LeafKeys(toml::parse_file(path)), LeafKeys(toml::parse(kEveryKeyChanged)));
}

TEST(ConfigTest, AbsentKeysKeepTheirCurrentValues) {
  EngineConfig config;
  config.partitions = 7;
  config.profile.type_weight[0] = 9;
  ASSERT_TRUE(
      LoadConfigText("wall_clock = true\n[profile.weights]\ncart = 6\n", "x", &config).ok());
  EXPECT_EQ(config.partitions, 7u);
  EXPECT_EQ(config.profile.type_weight[0], 9);
  EXPECT_EQ(config.profile.type_weight[3], 6);
  EXPECT_TRUE(config.wall_clock);
  EngineConfig untouched;
  ASSERT_TRUE(LoadConfigText("", "empty.toml", &untouched).ok());
  ExpectSameConfig(untouched, EngineConfig{});
}

TEST(ConfigTest, DurationsTakeAUnitOrIntegerMilliseconds) {
  auto half_life = [](std::string_view value) -> int64_t {
    EngineConfig config;
    absl::Status s =
        LoadConfigText("[profile]\nhalf_life = " + std::string(value) + "\n", "x", &config);
    EXPECT_TRUE(s.ok()) << value << ": " << s;
    return config.profile.half_life_ms;
  };
  EXPECT_EQ(half_life("\"30m\""), 30 * kMinuteMs);
  EXPECT_EQ(half_life("\"12h\""), 12 * kHourMs);
  EXPECT_EQ(half_life("\"1.5h\""), 90 * kMinuteMs);
  EXPECT_EQ(half_life("\"2w\""), 14 * kDayMs);
  EXPECT_EQ(half_life("\"45s\""), 45 * kSecondMs);
  EXPECT_EQ(half_life("\"5000ms\""), 5000);
  EXPECT_EQ(half_life("86400000"), kDayMs);
  EXPECT_EQ(ErrorOf("[profile]\nhalf_life = \"100\""),
            "'profile.half_life' in persona.toml: expected a duration from 1s to 3650d such as "
            "\"30m\", \"7d\" or \"100ms\", or integer milliseconds but found \"100\"");
  EXPECT_EQ(ErrorOf("[profile]\nhalf_life = \"7 days\""),
            "'profile.half_life' in persona.toml: expected a duration from 1s to 3650d such as "
            "\"30m\", \"7d\" or \"100ms\", or integer milliseconds but found \"7 days\"");
  EXPECT_EQ(ErrorOf("sync_interval = \"2h\""),
            "'sync_interval' in persona.toml: expected a duration from 1ms to 1h such as \"30m\", "
            "\"7d\" or \"100ms\", or integer milliseconds but found \"2h\"");
  EXPECT_EQ(ErrorOf("dedup_window = -5"),
            "'dedup_window' in persona.toml: expected a duration from 0ms to 365d such as \"30m\", "
            "\"7d\" or \"100ms\", or integer milliseconds but found -5");
}

TEST(ConfigTest, SyncPolicyNamesRoundTrip) {
  for (SyncPolicy p : {SyncPolicy::kAlways, SyncPolicy::kInterval, SyncPolicy::kNone}) {
    absl::StatusOr<SyncPolicy> parsed = ParseSyncPolicy(SyncPolicyName(p));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, p);
  }
  EXPECT_FALSE(ParseSyncPolicy("Always").ok());
  EngineConfig config;
  ASSERT_TRUE(LoadConfigText("sync = \"none\"", "x", &config).ok());
  EXPECT_EQ(config.sync, SyncPolicy::kNone);
  EXPECT_EQ(ErrorOf("sync = \"sometimes\""),
            "'sync' in persona.toml: expected one of \"always\", \"interval\" or \"none\" but "
            "found \"sometimes\"");
}

TEST(ConfigTest, UnknownKeysAreNamedWithTheClosestKnownKey) {
  EXPECT_EQ(ErrorOf("[profile]\nhalflife = \"3d\"\n"),
            "unknown key 'profile.halflife' in persona.toml (did you mean 'profile.half_life'?)");
  EXPECT_EQ(ErrorOf("partitons = 3"),
            "unknown key 'partitons' in persona.toml (did you mean 'partitions'?)");
  EXPECT_EQ(ErrorOf("[profile.weights]\nveiw = 2\n"),
            "unknown key 'profile.weights.veiw' in persona.toml (did you mean "
            "'profile.weights.view'?)");
  EXPECT_EQ(ErrorOf("[sever]\nport = 8080\n"), "unknown key 'sever' in persona.toml");
  // [server] is the HTTP service's table: the engine leaves it to serve_config.
  EXPECT_EQ(ErrorOf("[server]\nport = 8080\n"), "OK");
  EXPECT_EQ(ErrorOf("[limits]\nmax_id_len = 3\n"),
            "unknown key 'limits.max_id_len' in persona.toml (did you mean "
            "'limits.max_id_length'?)");
  // A typo explains the rest of the file better than a value error elsewhere, so it comes first.
  EXPECT_THAT(ErrorOf("partitions = -1\nwallclock = true\n"),
              StartsWith("unknown key 'wallclock'"));
}

TEST(ConfigTest, WrongTypesNameTheKeyAndTheExpectation) {
  EXPECT_EQ(ErrorOf("partitions = \"4\""),
            "'partitions' in persona.toml: expected an integer from 0 to 1024 but found \"4\"");
  EXPECT_EQ(ErrorOf("max_batch_events = 1.5"),
            "'max_batch_events' in persona.toml: expected an integer from 1 to 1048576 but found "
            "1.5");
  EXPECT_EQ(ErrorOf("wall_clock = 1"),
            "'wall_clock' in persona.toml: expected true or false but "
            "found 1");
  EXPECT_EQ(ErrorOf("data_dir = \"\""),
            "'data_dir' in persona.toml: expected a non-empty string but found \"\"");
  EXPECT_EQ(ErrorOf("tag_rules_file = [\"a\"]"),
            "'tag_rules_file' in persona.toml: expected a string but found an array");
  EXPECT_EQ(ErrorOf("profile = 3"), "'profile' in persona.toml: expected a table but found 3");
  EXPECT_EQ(ErrorOf("[profile]\nweights = true"),
            "'profile.weights' in persona.toml: expected a table but found true");
  EXPECT_EQ(ErrorOf("[profile.weights]\nview = \"1\""),
            "'profile.weights.view' in persona.toml: expected a number from 0 to 1000000 but "
            "found \"1\"");
}

TEST(ConfigTest, OutOfRangeValuesNameTheKeyAndTheRange) {
  EXPECT_EQ(ErrorOf("partitions = -1"),
            "'partitions' in persona.toml: expected an integer from 0 to 1024 but found -1");
  EXPECT_EQ(ErrorOf("[limits]\nmax_text_length = 0"),
            "'limits.max_text_length' in persona.toml: expected an integer from 1 to 67108864 but "
            "found 0");
  EXPECT_EQ(ErrorOf("[profile]\ncategory_capacity = 100000"),
            "'profile.category_capacity' in persona.toml: expected an integer from 1 to 10000 but "
            "found 100000");
  EXPECT_EQ(ErrorOf("[profile.weights]\npurchase = -2"),
            "'profile.weights.purchase' in persona.toml: expected a number from 0 to 1000000 but "
            "found -2");
  EXPECT_EQ(ErrorOf("[profile.weights]\npurchase = nan"),
            "'profile.weights.purchase' in persona.toml: expected a number from 0 to 1000000 but "
            "found nan");
  EXPECT_EQ(ErrorOf("[profile]\nchurned_after = \"7d\""),
            "'profile.churned_after' in persona.toml: expected at least profile.dormant_after "
            "(14d) but found 7d");
}

TEST(ConfigTest, SyntaxErrorsNameLineAndColumn) {
  EXPECT_THAT(ErrorOf("partitions = 4\nsync = = \"none\"\n"), StartsWith("persona.toml:2:"));
}

TEST(ConfigTest, AFailedLoadChangesNothing) {
  EngineConfig config;
  config.partitions = 3;
  absl::Status s = LoadConfigText("partitions = 5\ndata_dir = \"x\"\nwall_clock = \"yes\"\n",
                                  "bad.toml", &config);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(config.partitions, 3u);
  EXPECT_EQ(config.data_dir, "data");
}

TEST(ConfigTest, MissingFileIsNotFound) {
  EngineConfig config;
  absl::Status s = LoadConfigFile(
      ::testing::TempDir() + "no_such_persona_" + std::to_string(::getpid()) + ".toml", &config);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), StartsWith("cannot read config file"));
}

}  // namespace
}  // namespace persona
