#include "profile/query_tokenizer.h"

#include <algorithm>
#include <cstring>

namespace persona {
namespace {

constexpr std::string_view kStopWords[] = {"an", "and", "are",  "as",  "at", "be",
                                           "by", "for", "from", "in",  "is", "it",
                                           "of", "on",  "or",   "the", "to", "with"};

bool IsStopWord(std::string_view w) {
  return std::find(std::begin(kStopWords), std::end(kStopWords), w) != std::end(kStopWords);
}

bool IsAsciiAlnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Length of the UTF-8 sequence starting with lead byte c (1 for stray continuation bytes, so
// invalid input still advances).
size_t Utf8Length(unsigned char c) {
  if (c >= 0xf0) return 4;
  if (c >= 0xe0) return 3;
  if (c >= 0xc0) return 2;
  return 1;
}

// Non-ASCII characters that separate tokens: U+00A0, U+3000-U+3002, and full-width ! , : ; ?
bool IsNonAsciiSeparator(std::string_view ch) {
  static constexpr std::string_view kSeparators[] = {
      "\xc2\xa0",     "\xe3\x80\x80", "\xe3\x80\x81", "\xe3\x80\x82", "\xef\xbc\x81",
      "\xef\xbc\x8c", "\xef\xbc\x9a", "\xef\xbc\x9b", "\xef\xbc\x9f"};
  return std::find(std::begin(kSeparators), std::end(kSeparators), ch) != std::end(kSeparators);
}

// Han ideographs (with extension A and compatibility forms), kana and Hangul syllables: scripts
// written without spaces. `ch` is one UTF-8 character; a truncated sequence is not CJK.
bool IsCjk(std::string_view ch) {
  char32_t cp;
  const auto b = [&](size_t k) { return static_cast<unsigned char>(ch[k]); };
  if (ch.size() == 3 && (b(0) & 0xf0) == 0xe0) {
    cp = ((b(0) & 0x0f) << 12) | ((b(1) & 0x3f) << 6) | (b(2) & 0x3f);
  } else if (ch.size() == 4 && (b(0) & 0xf8) == 0xf0) {
    cp = ((b(0) & 0x07) << 18) | ((b(1) & 0x3f) << 12) | ((b(2) & 0x3f) << 6) | (b(3) & 0x3f);
  } else {
    return false;
  }
  return (cp >= 0x3040 && cp <= 0x30ff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
         (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xac00 && cp <= 0xd7af) ||
         (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x20000 && cp <= 0x2ffff);
}

class TokenSink {
 public:
  explicit TokenSink(QueryTokens* out) : out_(out) { out_->count = 0; }

  bool full() const { return out_->count == QueryTokens::kMaxTokens; }

  // Appends bytes of the token being built (ASCII: one lowercased byte; non-ASCII: one whole
  // character), silently stopping at kMaxTokenBytes on a character boundary.
  void Append(std::string_view piece) {
    if (length_ + piece.size() > QueryTokens::kMaxTokenBytes) return;
    std::memcpy(slot() + length_, piece.data(), piece.size());
    length_ += piece.size();
  }

  // Ends the token being built; `ascii` tokens must pass the length and stop-word filters.
  void End(bool ascii) {
    std::string_view token(slot(), length_);
    length_ = 0;
    if (token.empty() || full()) return;
    if (ascii && (token.size() < 2 || IsStopWord(token))) return;
    for (size_t i = 0; i < out_->count; ++i) {
      if (out_->tokens[i] == token) return;
    }
    out_->tokens[out_->count++] = token;
  }

 private:
  char* slot() { return out_->buffer + out_->count * QueryTokens::kMaxTokenBytes; }
  QueryTokens* out_;
  size_t length_ = 0;
};

}  // namespace

void TokenizeQuery(std::string_view query, QueryTokens* out) {
  TokenSink sink(out);
  enum class Run { kNone, kAscii, kNonAscii, kCjk } run = Run::kNone;
  // Within a CJK run: the previous character and how many the run has had.
  std::string_view previous_cjk;
  size_t cjk_chars = 0;
  const auto end_run = [&] {
    switch (run) {
      case Run::kAscii:
        sink.End(true);
        break;
      case Run::kNonAscii:
        sink.End(false);
        break;
      case Run::kCjk:
        // A lone character has no bigram: it is the token itself.
        if (cjk_chars == 1) {
          sink.Append(previous_cjk);
          sink.End(false);
        }
        cjk_chars = 0;
        break;
      case Run::kNone:
        break;
    }
    run = Run::kNone;
  };
  size_t i = 0;
  while (i < query.size() && !sink.full()) {
    const unsigned char c = static_cast<unsigned char>(query[i]);
    if (c < 0x80) {
      if (IsAsciiAlnum(c)) {
        if (run != Run::kAscii) end_run();
        const char lower = static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        sink.Append(std::string_view(&lower, 1));
        run = Run::kAscii;
      } else {
        end_run();
      }
      ++i;
      continue;
    }
    const size_t n = std::min(Utf8Length(c), query.size() - i);
    const std::string_view ch = query.substr(i, n);
    i += n;
    if (IsNonAsciiSeparator(ch)) {
      end_run();
    } else if (IsCjk(ch)) {
      if (run != Run::kCjk) end_run();
      run = Run::kCjk;
      if (cjk_chars > 0) {
        sink.Append(previous_cjk);
        sink.Append(ch);
        sink.End(false);
      }
      previous_cjk = ch;
      ++cjk_chars;
    } else {
      if (run != Run::kNonAscii) end_run();
      sink.Append(ch);
      run = Run::kNonAscii;
    }
  }
  end_run();
}

}  // namespace persona
