// Splits a search query into the keywords credited to the keyword interest table. Rules (kept
// simple and deterministic, because keywords are persisted and compared across profiles):
//   - ASCII letters and digits form words, lowercased; any other ASCII byte separates words;
//     ASCII words shorter than 2 characters and a short English stop-word list are skipped.
//   - A run of CJK characters (Han, kana, Hangul) becomes its character bigrams ("蓝牙耳机" ->
//     "蓝牙", "牙耳", "耳机"), since CJK text has no spaces and a dictionary segmenter is out of
//     scope: bigrams match a query against a shorter or longer one that shares words. A single
//     CJK character stays a token. Any other run of non-ASCII characters is one token ("café" is
//     "caf" + "é"); ideographic space, full-width punctuation (、。，！？：；) and U+00A0 separate.
//   - Tokens are cut to 48 bytes at a character boundary; at most 16 distinct tokens per query,
//     duplicates removed, in query order.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace persona {

struct QueryTokens {
  static constexpr size_t kMaxTokens = 16;
  static constexpr size_t kMaxTokenBytes = 48;

  QueryTokens() = default;
  // The views point into `buffer`: copying would leave them pointing into the original.
  QueryTokens(const QueryTokens&) = delete;
  QueryTokens& operator=(const QueryTokens&) = delete;

  std::array<std::string_view, kMaxTokens> tokens;
  size_t count = 0;
  char buffer[kMaxTokens * kMaxTokenBytes];
};

// Fills `out` with the keywords of `query` (no allocation).
void TokenizeQuery(std::string_view query, QueryTokens* out);

}  // namespace persona
