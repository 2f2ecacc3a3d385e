#include "profile/query_tokenizer.h"

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

TEST(QueryTokenizerTest, NonAsciiRunIsOneTokenAndFullWidthPunctuationSplits) {
  EXPECT_EQ(Tokens("蓝牙耳机"), (V{"蓝牙耳机"}));
  EXPECT_EQ(Tokens("sony蓝牙耳机 降噪"), (V{"sony", "蓝牙耳机", "降噪"}));
  EXPECT_EQ(Tokens("手机，充电器"), (V{"手机", "充电器"}));
  EXPECT_EQ(Tokens("书"), (V{"书"}));  // one CJK character is a word
}

TEST(QueryTokenizerTest, LongTokensAreCutAtCharacterBoundaryAndCountIsBounded) {
  const std::string long_ascii(100, 'a');
  EXPECT_EQ(Tokens(long_ascii), (V{std::string(48, 'a')}));
  std::string long_cjk;
  for (int i = 0; i < 30; ++i) long_cjk += "机";  // 3 bytes each
  EXPECT_EQ(Tokens(long_cjk)[0].size(), 48u);
  std::string many;
  for (int i = 0; i < 40; ++i) many += "w" + std::to_string(i) + " ";
  EXPECT_EQ(Tokens(many).size(), QueryTokens::kMaxTokens);
  // Invalid UTF-8 (a truncated sequence) still terminates and yields a token.
  EXPECT_EQ(Tokens("ab \xe8\x93").size(), 2u);
}

}  // namespace
}  // namespace persona
