#include "serve/request_target.h"

#include <gtest/gtest.h>

namespace persona::serve {
namespace {

TEST(RequestTargetTest, PercentDecodingHandlesEscapesPlusAndErrors) {
  EXPECT_EQ(*PercentDecode("u%201%2Fx", false), "u 1/x");
  EXPECT_EQ(*PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(*PercentDecode("a+b", true), "a b");
  EXPECT_EQ(*PercentDecode("%e4%B8%ad", false), "\xe4\xb8\xad");
  EXPECT_FALSE(PercentDecode("abc%2", false).ok());
  EXPECT_FALSE(PercentDecode("abc%", false).ok());
  EXPECT_FALSE(PercentDecode("%zz", false).ok());
}

TEST(RequestTargetTest, PatternsMatchLiteralSegmentsAndCaptureTheDecodedId) {
  RoutePatterns p;
  p.Add("/v1/users/{id}/profile");
  p.Add("/v1/users/{id}");
  p.Add("/v1/profiles:batchGet");
  p.Add("/healthz");
  auto m = p.Match("/v1/users/a%2Fb/profile");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->pattern, "/v1/users/{id}/profile");
  EXPECT_EQ(m->id, "a/b");
  m = p.Match("/v1/users/u1");
  EXPECT_EQ(m->pattern, "/v1/users/{id}");
  EXPECT_EQ(m->id, "u1");
  EXPECT_EQ(p.Match("/v1/profiles:batchGet")->pattern, "/v1/profiles:batchGet");
  EXPECT_EQ(p.Match("/healthz")->pattern, "/healthz");
  EXPECT_EQ(p.Match("/v1/users//profile")->pattern, "");  // an empty id matches nothing
  EXPECT_EQ(p.Match("/v1/users/u1/profile/extra")->pattern, "");
  EXPECT_EQ(p.Match("/nope")->pattern, "");
  EXPECT_EQ(p.Match("/healthz/")->pattern, "");
  EXPECT_FALSE(p.Match("/v1/users/%zz/profile").ok());
}

TEST(RequestTargetTest, QueryParametersDecodeAndKeepTheFirstValue) {
  auto q = ParseQuery("fields=stats%2Ctags&limit=5&flag&x=a+b&limit=7");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q->Get("fields"), "stats,tags");
  EXPECT_EQ(*q->Get("limit"), "5");
  EXPECT_EQ(*q->Get("flag"), "");
  EXPECT_EQ(*q->Get("x"), "a b");
  EXPECT_FALSE(q->Get("missing").has_value());
  EXPECT_TRUE(ParseQuery("")->pairs.empty());
  auto bad = ParseQuery("a=%G1");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'a'"), std::string::npos);
}

}  // namespace
}  // namespace persona::serve
