#include "recommend/recommend_config.h"

#include <gtest/gtest.h>

namespace persona {
namespace {

std::string ErrorOf(std::string_view toml) {
  RecommendConfig c;
  absl::Status s = LoadRecommendConfigText(toml, "test.toml", &c);
  return s.ok() ? "OK" : std::string(s.message());
}

TEST(RecommendConfigTest, TheShippedConfigFileEqualsTheDefaults) {
  RecommendConfig from_file;
  ASSERT_TRUE(
      LoadRecommendConfigFile(std::string(PERSONA_SOURCE_DIR) + "/config/persona.toml", &from_file)
          .ok());
  const RecommendConfig d;
  EXPECT_EQ(from_file.model_dir, d.model_dir);
  EXPECT_EQ(from_file.model_poll_seconds, d.model_poll_seconds);
  EXPECT_EQ(from_file.exclude_purchased, d.exclude_purchased);
  EXPECT_EQ(from_file.history, d.history);
  EXPECT_EQ(from_file.max_k, d.max_k);
  EXPECT_EQ(from_file.impressions_log, d.impressions_log);
  EXPECT_EQ(from_file.experiment, d.experiment);
  EXPECT_EQ(from_file.trending.half_life_ms, d.trending.half_life_ms);
  EXPECT_EQ(from_file.item_cf.max_neighbours, d.item_cf.max_neighbours);
  EXPECT_EQ(from_file.item_cf.window, d.item_cf.window);
  ASSERT_EQ(from_file.variants.size(), d.variants.size());
  EXPECT_EQ(from_file.variants[0].name, d.variants[0].name);
  EXPECT_EQ(from_file.variants[0].weight, d.variants[0].weight);
  EXPECT_EQ(from_file.variants[0].sources, d.variants[0].sources);
}

TEST(RecommendConfigTest, VariantsAreRead) {
  RecommendConfig c;
  ASSERT_TRUE(LoadRecommendConfigText(R"(
[recommend]
experiment = "spring"
[[recommend.variants]]
name = "control"
weight = 1
sources = ["trending"]
[[recommend.variants]]
name = "sasrec"
weight = 3
sources = ["sasrec", "trending"]
)",
                                      "t", &c)
                  .ok());
  EXPECT_EQ(c.experiment, "spring");
  ASSERT_EQ(c.variants.size(), 2u);
  EXPECT_EQ(c.variants[1].name, "sasrec");
  EXPECT_EQ(c.variants[1].weight, 3u);
  EXPECT_EQ(c.variants[1].sources,
            (std::vector<RecSource>{RecSource::kSasRec, RecSource::kTrending}));
}

TEST(RecommendConfigTest, MistakesAreNamed) {
  EXPECT_EQ(ErrorOf("[recommend]\nmax_kk = 3\n"), "unknown key 'recommend.max_kk' in test.toml");
  EXPECT_EQ(ErrorOf("[recommend]\nmax_k = 0\n"),
            "'recommend.max_k' in test.toml: expected an integer in [1, 10000] but found 0");
  EXPECT_NE(ErrorOf("[[recommend.variants]]\nname = \"a\"\nsources = [\"magic\"]\n")
                .find("sources must be among"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[[recommend.variants]]\nname = \"a.b\"\nsources = [\"trending\"]\n")
                .find("without '.'"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[[recommend.variants]]\nname = \"a\"\nsources = [\"trending\"]\n"
                    "[[recommend.variants]]\nname = \"a\"\nsources = [\"trending\"]\n")
                .find("duplicate variant name"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[[recommend.variants]]\nname = \"a\"\nweight = 0\nsources = [\"trending\"]\n")
                .find("weights sum to 0"),
            std::string::npos);
  EXPECT_EQ(ErrorOf("[server]\nport = 1\n"), "OK");  // other tables are not ours
}

}  // namespace
}  // namespace persona
