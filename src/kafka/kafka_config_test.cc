#include "kafka/kafka_config.h"

#include <gtest/gtest.h>

#include <map>

namespace persona {
namespace {

TEST(KafkaConfigTest, ReadsEveryKeyAndPassesClientPropertiesThrough) {
  KafkaConfig c;
  ASSERT_TRUE(LoadKafkaConfigText(R"(
[kafka]
brokers = "k1:9092,k2:9092"
topic = "shop"
group = "profiles"
max_batch_events = 200
linger = "20ms"
commit_interval = "5s"
audience_topic = "changes"
partitioner = "crc32"
profile_topic = "profiles"
profile_fields = "stats,tags"
cluster = false
cluster_topic = "members"
advertised_url = "http://10.0.0.5:8080"
share_interval = "500ms"
[kafka.client]
"security.protocol" = "SASL_SSL"
"fetch.max.bytes" = 1048576
"enable.ssl.certificate.verification" = false
)",
                                  "t.toml", &c)
                  .ok());
  EXPECT_EQ(c.brokers, "k1:9092,k2:9092");
  EXPECT_EQ(c.topic, "shop");
  EXPECT_EQ(c.group, "profiles");
  EXPECT_EQ(c.max_batch_events, 200u);
  EXPECT_EQ(c.linger.count(), 20);
  EXPECT_EQ(c.commit_interval.count(), 5000);
  EXPECT_EQ(c.audience_topic, "changes");
  EXPECT_EQ(c.partitioner, "crc32");
  EXPECT_EQ(c.profile_topic, "profiles");
  EXPECT_EQ(c.profile_fields, "stats,tags");
  EXPECT_FALSE(c.cluster);
  EXPECT_EQ(c.cluster_topic_name(), "members");
  EXPECT_EQ(c.advertised_url, "http://10.0.0.5:8080");
  EXPECT_EQ(c.share_interval.count(), 500);
  EXPECT_EQ(c.ProducerClient().back(),
            (std::pair<std::string, std::string>{"partitioner", "consistent_random"}));
  const std::map<std::string, std::string> client(c.client.begin(), c.client.end());
  EXPECT_EQ(client,
            (std::map<std::string, std::string>{{"security.protocol", "SASL_SSL"},
                                                {"fetch.max.bytes", "1048576"},
                                                {"enable.ssl.certificate.verification", "false"}}));
  EXPECT_TRUE(c.enabled());
}

TEST(KafkaConfigTest, NoTableChangesNothingAndTheShippedFileDisablesKafka) {
  KafkaConfig c;
  ASSERT_TRUE(LoadKafkaConfigText("partitions = 4\n", "t.toml", &c).ok());
  EXPECT_FALSE(c.enabled());
  // The shipped file sets every key to its default.
  c.brokers = "x:1";
  c.topic = "t";
  c.group = "g";
  c.max_batch_events = 7;
  c.linger = std::chrono::milliseconds(7);
  c.commit_interval = std::chrono::milliseconds(7);
  c.audience_topic = "a";
  ASSERT_TRUE(
      LoadKafkaConfigFile(std::string(PERSONA_SOURCE_DIR) + "/config/persona.toml", &c).ok());
  const KafkaConfig d;
  EXPECT_FALSE(c.enabled());
  EXPECT_EQ(c.topic, d.topic);
  EXPECT_EQ(c.group, d.group);
  EXPECT_EQ(c.max_batch_events, d.max_batch_events);
  EXPECT_EQ(c.linger, d.linger);
  EXPECT_EQ(c.commit_interval, d.commit_interval);
  EXPECT_EQ(c.audience_topic, d.audience_topic);
  EXPECT_TRUE(c.client.empty());
}

TEST(KafkaConfigTest, ErrorsNameTheKeyAndChangeNothing) {
  KafkaConfig c;
  c.topic = "kept";
  absl::Status s = LoadKafkaConfigText("[kafka]\ntopic = \"x\"\nbrokers = 9092\n", "f.toml", &c);
  EXPECT_EQ(s.message(), "'kafka.brokers' in f.toml: expected a string but found 9092");
  EXPECT_EQ(c.topic, "kept");
  s = LoadKafkaConfigText("[kafka]\nbootstrap = \"k\"\n", "f.toml", &c);
  EXPECT_NE(s.message().find("unknown key 'kafka.bootstrap'"), std::string::npos) << s;
  s = LoadKafkaConfigText("[kafka]\nlinger = \"soon\"\n", "f.toml", &c);
  EXPECT_NE(s.message().find("'kafka.linger'"), std::string::npos) << s;
  s = LoadKafkaConfigText("[kafka]\nmax_batch_events = 0\n", "f.toml", &c);
  EXPECT_NE(s.message().find("[1, 1000000]"), std::string::npos) << s;
  s = LoadKafkaConfigText("[kafka]\npartitioner = \"random\"\n", "f.toml", &c);
  EXPECT_NE(s.message().find("'kafka.partitioner'"), std::string::npos) << s;
  s = LoadKafkaConfigText("[kafka]\nadvertised_url = \"https://h:1\"\n", "f.toml", &c);
  EXPECT_NE(s.message().find("http://"), std::string::npos) << s;
  EXPECT_EQ(c.partitioner, "murmur2");
}

}  // namespace
}  // namespace persona
