#include "profile/query_tokenizer.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace persona {
namespace {

std::vector<std::string> Tokens(std::string_view q) {
  QueryTokens t;
  TokenizeQuery(q, &t);
  return std::vector<std::string>(t.tokens.begin(), t.tokens.begin() + t.count);
}

using V = std::vector<std::string>;

TEST(QueryTokenizerTest, LowercasesAsciiWordsAndSplitsOnNonAlphanumerics) {
  EXPECT_EQ(Tokens("Red Running-Shoes, size 42!"), (V{"red", "running", "shoes", "size", "42"}));
  EXPECT_EQ(Tokens("iPhone13 pro"), (V{"iphone13", "pro"}));
}

TEST(QueryTokenizerTest, SkipsShortWordsStopWordsAndDuplicates) {
  EXPECT_EQ(Tokens("a case for the phone and a CASE"), (V{"case", "phone"}));
  EXPECT_EQ(Tokens("x y z"), V{});
  EXPECT_EQ(Tokens(""), V{});
}

TEST(QueryTokenizerTest, CjkRunBecomesCharacterBigramsAndFullWidthPunctuationSplits) {
  EXPECT_EQ(Tokens("蓝牙耳机"), (V{"蓝牙", "牙耳", "耳机"}));
  EXPECT_EQ(Tokens("sony蓝牙耳机 降噪"), (V{"sony", "蓝牙", "牙耳", "耳机", "降噪"}));
  EXPECT_EQ(Tokens("手机，充电器"), (V{"手机", "充电", "电器"}));
  EXPECT_EQ(Tokens("书"), (V{"书"}));                  // one CJK character is a word
  EXPECT_EQ(Tokens("书 book"), (V{"书", "book"}));     // also inside a longer query
  EXPECT_EQ(Tokens("耳机耳机"), (V{"耳机", "机耳"}));  // repeated bigrams once
  EXPECT_EQ(Tokens("ヘッドホン"), (V{"ヘッ", "ッド", "ドホ", "ホン"}));  // kana too
}

TEST(QueryTokenizerTest, SharedCjkWordMatchesAcrossLongerQueries) {
  // The point of bigrams: "耳机" (headphones) is a token of both queries.
  const V short_query = Tokens("耳机");
  const V long_query = Tokens("无线蓝牙耳机");
  EXPECT_EQ(short_query, V{"耳机"});
  EXPECT_NE(std::find(long_query.begin(), long_query.end(), "耳机"), long_query.end());
}

TEST(QueryTokenizerTest, NonCjkNonAsciiRunIsOneToken) {
  EXPECT_EQ(Tokens("café"), (V{"caf", "é"}));
  EXPECT_EQ(Tokens("über"), (V{"ü", "ber"}));
  EXPECT_EQ(Tokens("Ωμέγα"), (V{"Ωμέγα"}));
  EXPECT_EQ(Tokens("Ωμέγα耳机"), (V{"Ωμέγα", "耳机"}));
}

TEST(QueryTokenizerTest, LongTokensAreCutAtCharacterBoundaryAndCountIsBounded) {
  const std::string long_ascii(100, 'a');
  EXPECT_EQ(Tokens(long_ascii), (V{std::string(48, 'a')}));
  std::string long_other;
  for (int i = 0; i < 30; ++i) long_other += "ж";  // 2 bytes each
  EXPECT_EQ(Tokens(long_other)[0].size(), 48u);
  std::string long_cjk;  // 40 distinct characters: 39 bigrams, capped
  for (char32_t c = 0x4e00; c < 0x4e00 + 40; ++c) {
    long_cjk += static_cast<char>(0xe0 | (c >> 12));
    long_cjk += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    long_cjk += static_cast<char>(0x80 | (c & 0x3f));
  }
  EXPECT_EQ(Tokens(long_cjk).size(), QueryTokens::kMaxTokens);
  std::string many;
  for (int i = 0; i < 40; ++i) many += "w" + std::to_string(i) + " ";
  EXPECT_EQ(Tokens(many).size(), QueryTokens::kMaxTokens);
  // Invalid UTF-8 (a truncated sequence) still terminates and yields a token.
  EXPECT_EQ(Tokens("ab \xe8\x93").size(), 2u);
}

}  // namespace
}  // namespace persona
