#include "serve/serve_config.h"

#include <gtest/gtest.h>

#include "engine/config.h"

namespace persona::serve {
namespace {

TEST(ServeConfigTest, ReadsEveryServerKey) {
  ServeConfig c;
  absl::Status s = LoadServeConfigText(R"(
[server]
port = 9090
bind = "0.0.0.0"
threads = 3
max_body_bytes = 2048
max_header_bytes = 4096
max_connections = 50
read_timeout = "2s"
write_timeout = "3s"
idle_timeout = "1m"
drain_timeout = "500ms"
max_batch_events = 100
max_batch_get = 10
strict = true
metrics_public = false
access_log = ""
tls_cert = "c.pem"
tls_key = "k.pem"
[[server.api_keys]]
name = "shop"
sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
scopes = ["ingest", "read"]
)",
                                       "test", &c);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.http.port, 9090);
  EXPECT_EQ(c.http.bind_address, "0.0.0.0");
  EXPECT_EQ(c.http.threads, 3u);
  EXPECT_EQ(c.http.max_body_bytes, 2048u);
  EXPECT_EQ(c.http.max_header_bytes, 4096u);
  EXPECT_EQ(c.http.max_connections, 50u);
  EXPECT_EQ(c.http.read_timeout.count(), 2000);
  EXPECT_EQ(c.http.write_timeout.count(), 3000);
  EXPECT_EQ(c.http.idle_timeout.count(), 60000);
  EXPECT_EQ(c.drain_timeout.count(), 500);
  EXPECT_EQ(c.max_batch_events, 100u);
  EXPECT_EQ(c.max_batch_get, 10u);
  EXPECT_TRUE(c.strict);
  EXPECT_FALSE(c.metrics_public);
  EXPECT_EQ(c.access_log, "");
  EXPECT_EQ(c.http.tls_cert_file, "c.pem");
  ASSERT_EQ(c.api_keys.size(), 1u);
  EXPECT_EQ(c.api_keys[0].name, "shop");
  EXPECT_EQ(c.api_keys[0].scopes, (std::vector<std::string>{"ingest", "read"}));
}

TEST(ServeConfigTest, ErrorsNameTheKeyAndLeaveTheConfigUnchanged) {
  ServeConfig c;
  absl::Status s = LoadServeConfigText("[server]\nprot = 1\n", "f.toml", &c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("server.prot"), std::string::npos) << s;
  s = LoadServeConfigText("[server]\nport = 1\nread_timeout = \"soon\"\n", "f.toml", &c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("server.read_timeout"), std::string::npos) << s;
  EXPECT_EQ(c.http.port, 8080);  // nothing applied from a file with an error
  s = LoadServeConfigText("[server]\nport = 70000\n", "f.toml", &c);
  EXPECT_NE(s.message().find("server.port"), std::string::npos) << s;
  s = LoadServeConfigText("[server]\ntls_cert = \"a\"\n", "f.toml", &c);
  EXPECT_FALSE(s.ok());
  s = LoadServeConfigText("[[server.api_keys]]\nname = \"x\"\nsecret = \"y\"\n", "f.toml", &c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("api_keys[0].secret"), std::string::npos) << s;
}

TEST(ServeConfigTest, EngineLoaderAcceptsTheServerTableAndServeLoaderIgnoresEngineKeys) {
  const char* text = "partitions = 2\n[server]\nport = 1234\n[limits]\n";
  EngineConfig engine;
  ASSERT_TRUE(LoadConfigText(text, "t", &engine).ok());
  EXPECT_EQ(engine.partitions, 2u);
  ServeConfig serve;
  ASSERT_TRUE(LoadServeConfigText(text, "t", &serve).ok());
  EXPECT_EQ(serve.http.port, 1234);
}

TEST(ServeConfigTest, ReferenceFileHoldsExactlyTheDefaults) {
  ServeConfig from_file;
  ASSERT_TRUE(
      LoadServeConfigFile(std::string(PERSONA_SOURCE_DIR) + "/config/persona.toml", &from_file)
          .ok());
  const ServeConfig d;
  EXPECT_EQ(from_file.http.bind_address, d.http.bind_address);
  EXPECT_EQ(from_file.http.port, d.http.port);
  EXPECT_EQ(from_file.http.threads, d.http.threads);
  EXPECT_EQ(from_file.http.max_body_bytes, d.http.max_body_bytes);
  EXPECT_EQ(from_file.http.max_header_bytes, d.http.max_header_bytes);
  EXPECT_EQ(from_file.http.max_connections, d.http.max_connections);
  EXPECT_EQ(from_file.http.read_timeout, d.http.read_timeout);
  EXPECT_EQ(from_file.http.write_timeout, d.http.write_timeout);
  EXPECT_EQ(from_file.http.idle_timeout, d.http.idle_timeout);
  EXPECT_EQ(from_file.drain_timeout, d.drain_timeout);
  EXPECT_EQ(from_file.max_batch_events, d.max_batch_events);
  EXPECT_EQ(from_file.max_batch_get, d.max_batch_get);
  EXPECT_EQ(from_file.strict, d.strict);
  EXPECT_EQ(from_file.metrics_public, d.metrics_public);
  EXPECT_EQ(from_file.access_log, d.access_log);
  EXPECT_EQ(from_file.http.tls_cert_file, d.http.tls_cert_file);
  EXPECT_EQ(from_file.http.tls_key_file, d.http.tls_key_file);
  EXPECT_TRUE(from_file.api_keys.empty());
}

}  // namespace
}  // namespace persona::serve
