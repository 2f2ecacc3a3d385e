#include "predict/sentiment_model.h"

#include <fasttext/fasttext.h>
#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/model_artifact.h"

namespace persona {
namespace {

// ---------------------------------------------------------------------------------------------
// Tokenisation

// Decodes one UTF-8 character at `s[i]`; returns its length (0 for an invalid sequence, which the
// caller skips byte by byte) and stores the code point.
size_t DecodeUtf8(std::string_view s, size_t i, char32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  size_t n;
  char32_t v;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xe0) == 0xc0) {
    n = 2;
    v = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    v = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
    v = (v << 6) | (b(k) & 0x3f);
  }
  *cp = v;
  return n;
}

bool IsCjk(char32_t c) {
  return (c >= 0x3040 && c <= 0x30ff) ||  // hiragana, katakana
         (c >= 0x3400 && c <= 0x4dbf) ||  // CJK extension A
         (c >= 0x4e00 && c <= 0x9fff) ||  // CJK unified ideographs
         (c >= 0xac00 && c <= 0xd7af) ||  // Hangul syllables
         (c >= 0xf900 && c <= 0xfaff) ||  // CJK compatibility ideographs
         (c >= 0x20000 && c <= 0x2ffff);  // CJK extensions B..
}

// Non-ASCII code points that separate words: Latin-1 punctuation and NBSP, general punctuation,
// CJK symbols and punctuation, CJK compatibility forms, the BOM, half-width forms.
bool IsNonAsciiSeparator(char32_t c) {
  return (c >= 0x80 && c <= 0xbf) || c == 0xd7 || c == 0xf7 || (c >= 0x2000 && c <= 0x2bff) ||
         (c >= 0x3000 && c <= 0x303f) || (c >= 0xfe30 && c <= 0xfe4f) || c == 0xfeff ||
         (c >= 0xff00 && c <= 0xffef);
}

bool IsAsciiAlnum(char32_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsAsciiAlpha(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsApostrophe(char32_t c) { return c == '\'' || c == 0x2019; }

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3f)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3f)));
  }
}

class TokenWriter {
 public:
  void Emit(std::string_view token) {
    if (token.empty()) return;
    if (!out_.empty()) out_.push_back(' ');
    out_.append(token);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class SentimentTokenizer {
 public:
  std::string Run(std::string_view text) {
    // Decode once; full-width ASCII folds to ASCII so "ｇｏｏｄ！" reads as "good!".
    std::vector<char32_t> cps;
    cps.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      char32_t c;
      const size_t n = DecodeUtf8(text, i, &c);
      if (n == 0) {
        cps.push_back(' ');
        ++i;
        continue;
      }
      if (c >= 0xff01 && c <= 0xff5e) c -= 0xfee0;
      cps.push_back(c);
      i += n;
    }
    for (size_t i = 0; i < cps.size(); ++i) {
      const char32_t c = cps[i];
      if (IsAsciiAlnum(c)) {
        EndCjk();
        word_.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c));
        last_punct_ = 0;
      } else if (IsApostrophe(c) && !word_.empty() && i + 1 < cps.size() &&
                 IsAsciiAlpha(cps[i + 1])) {
        i = Contraction(cps, i);
      } else if (IsCjk(c)) {
        EndWord();
        cjk_.push_back(c);
        last_punct_ = 0;
      } else if (c == '!' || c == '?') {
        EndWord();
        EndCjk();
        if (last_punct_ != c) writer_.Emit(c == '!' ? "!" : "?");
        last_punct_ = c;
      } else if (c < 0x80 || IsNonAsciiSeparator(c)) {
        EndWord();
        EndCjk();
        if (c != ' ') last_punct_ = 0;
      } else if (c >= 0x1f000) {
        // Emoji and pictographs: each one a token (they carry tone).
        EndWord();
        EndCjk();
        std::string e;
        AppendUtf8(c, &e);
        writer_.Emit(e);
        last_punct_ = 0;
      } else {
        // Other letters (accented Latin, Cyrillic, ...) join the word unchanged.
        EndCjk();
        AppendUtf8(c, &word_);
        last_punct_ = 0;
      }
    }
    EndWord();
    EndCjk();
    return writer_.Take();
  }

 private:
  // At an apostrophe between `word_` and letters: splits "didn't" into "did" + "n't" and
  // "it's" into "it" + "'s". Returns the index of the last consumed code point.
  size_t Contraction(const std::vector<char32_t>& cps, size_t i) {
    size_t j = i + 1;
    std::string suffix = "'";
    while (j < cps.size() && IsAsciiAlpha(cps[j])) {
      const char32_t c = cps[j++];
      suffix.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c));
    }
    if (suffix == "'t" && word_.size() > 1 && word_.back() == 'n') {
      word_.pop_back();
      EndWord();
      writer_.Emit("n't");
    } else {
      EndWord();
      writer_.Emit(suffix);
    }
    last_punct_ = 0;
    return j - 1;
  }

  void EndWord() {
    writer_.Emit(word_);
    word_.clear();
  }

  void EndCjk() {
    if (cjk_.empty()) return;
    std::string piece;
    for (char32_t c : cjk_) {
      piece.clear();
      AppendUtf8(c, &piece);
      writer_.Emit(piece);
    }
    for (size_t k = 0; k + 1 < cjk_.size(); ++k) {
      piece.clear();
      AppendUtf8(cjk_[k], &piece);
      AppendUtf8(cjk_[k + 1], &piece);
      writer_.Emit(piece);
    }
    cjk_.clear();
  }

  TokenWriter writer_;
  std::string word_;
  std::vector<char32_t> cjk_;
  char32_t last_punct_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Corpora

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::InternalError(absl::StrCat("cannot read ", path));
  return bytes;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view StripBom(std::string_view s) {
  constexpr std::string_view kBom = "\xef\xbb\xbf";
  while (s.substr(0, kBom.size()) == kBom) s.remove_prefix(kBom.size());
  return s;
}

// Abseil here is built with its own string_view type; StrCat takes that one.
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string_view TrimLine(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

bool HasText(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") != std::string_view::npos;
}

absl::StatusOr<std::vector<SentimentExample>> LoadUci(const std::string& path,
                                                      std::string_view bytes) {
  std::vector<SentimentExample> out;
  size_t line_no = 0;
  for (size_t pos = 0; pos < bytes.size();) {
    size_t end = bytes.find('\n', pos);
    if (end == std::string_view::npos) end = bytes.size();
    std::string_view line = TrimLine(bytes.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (line_no == 1) line = StripBom(line);
    if (!HasText(line)) continue;
    const size_t tab = line.rfind('\t');
    if (tab == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": expected `sentence<TAB>0|1`"));
    }
    std::string_view label = line.substr(tab + 1);
    while (!label.empty() && label.back() == ' ') label.remove_suffix(1);
    while (!label.empty() && label.front() == ' ') label.remove_prefix(1);
    if (label != "0" && label != "1") {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": label '", Av(label), "' is not 0 or 1"));
    }
    const std::string_view text = line.substr(0, tab);
    if (!HasText(text)) continue;
    out.push_back({std::string(text), label == "1" ? 1 : 0});
  }
  return out;
}

// RFC 4180 records; fields may be quoted (quotes doubled inside) and quoted fields may span lines.
// Returns false at the end of input. `line_no` counts physical lines.
bool NextCsvRecord(std::string_view bytes, size_t* pos, std::vector<std::string>* fields,
                   size_t* line_no) {
  fields->clear();
  if (*pos >= bytes.size()) return false;
  std::string field;
  bool quoted = false;
  bool field_started = false;
  size_t i = *pos;
  ++*line_no;
  for (; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < bytes.size() && bytes[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++*line_no;
        field.push_back(c);
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = true;
      field_started = true;
    } else if (c == ',') {
      fields->push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (c == '\n') {
      ++i;
      break;
    } else if (c != '\r') {
      // A BOM at the start of a field (the corpus has one inside the first record) is dropped.
      field.push_back(c);
      if (!field_started && field.size() == 3 && field == "\xef\xbb\xbf")
        field.clear();
      else
        field_started = true;
    }
  }
  fields->push_back(std::move(field));
  *pos = i;
  return true;
}

absl::StatusOr<std::vector<SentimentExample>> LoadChineseCsv(const std::string& path,
                                                             std::string_view bytes) {
  std::vector<SentimentExample> out;
  std::vector<std::string> fields;
  size_t pos = 0, line_no = 0;
  bool header = true;
  while (NextCsvRecord(bytes, &pos, &fields, &line_no)) {
    if (header) {
      header = false;
      if (fields.size() >= 2 && std::string_view(StripBom(fields[0])) == "cat") continue;
    }
    if (fields.size() == 1 && !HasText(fields[0])) continue;
    if (fields.size() < 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": expected `cat,label,review`"));
    }
    const std::string_view label = fields[1];
    if (label != "0" && label != "1") {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": label '", Av(label), "' is not 0 or 1"));
    }
    // A review with an unquoted comma spills into more fields: they are all review text.
    std::string text(StripBom(fields[2]));
    for (size_t k = 3; k < fields.size(); ++k) absl::StrAppend(&text, ",", fields[k]);
    if (!HasText(text)) continue;
    out.push_back({std::move(text), label == "1" ? 1 : 0});
  }
  return out;
}

absl::StatusOr<std::vector<SentimentExample>> LoadReviewJsonl(const std::string& path,
                                                              std::string_view bytes) {
  std::vector<SentimentExample> out;
  simdjson::dom::parser parser;
  size_t line_no = 0;
  for (size_t pos = 0; pos < bytes.size();) {
    size_t end = bytes.find('\n', pos);
    if (end == std::string_view::npos) end = bytes.size();
    const std::string_view line = TrimLine(bytes.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (!HasText(line)) continue;
    simdjson::dom::element doc;
    if (parser.parse(line.data(), line.size()).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": not a JSON object"));
    }
    double stars = 0;
    if (doc["overall"].get(stars) != simdjson::SUCCESS) {
      int64_t istars = 0;
      if (doc["overall"].get(istars) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", line_no, ": missing numeric \"overall\""));
      }
      stars = static_cast<double>(istars);
    }
    std::string_view review, summary;
    if (doc["reviewText"].get(review) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": missing string \"reviewText\""));
    }
    if (doc["summary"].get(summary) != simdjson::SUCCESS) summary = {};  // optional
    if (stars > 2 && stars < 4) continue;                                // 3 stars: neither
    // The summary ("Five Stars", "Junk") is the most direct statement of the rating.
    std::string text;
    if (HasText(summary)) absl::StrAppend(&text, Av(summary), ". ");
    absl::StrAppend(&text, Av(review));
    if (!HasText(text)) continue;
    out.push_back({std::move(text), stars >= 4 ? 1 : 0});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Artifact payload; model_artifact.h wraps it in the envelope.

constexpr std::string_view kKindSentiment = "sentiment";
// Bumped whenever SentimentTokens changes: a model only understands the tokens it was trained on.
constexpr uint32_t kTokenizerVersion = 1;
constexpr std::string_view kPositiveLabel = "__label__1";
constexpr std::string_view kNegativeLabel = "__label__0";
// FastText::signModel's magic and the model version libfasttext 0.9.2 writes and reads.
constexpr int32_t kFastTextMagic = 793712314;
constexpr int32_t kFastTextVersion = 12;

class PayloadWriter {
 public:
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void F64(double v) { Raw(&v, 8); }
  void String(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  void Blob(std::string_view s) {
    U64(s.size());
    out_.append(s);
  }
  std::string& str() { return out_; }

 private:
  void Raw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string out_;
};

class PayloadReader {
 public:
  explicit PayloadReader(std::string_view in) : in_(in) {}
  absl::Status U32(std::string_view what, uint32_t* v) { return Raw(what, v, 4); }
  absl::Status U64(std::string_view what, uint64_t* v) { return Raw(what, v, 8); }
  absl::Status F64(std::string_view what, double* v) { return Raw(what, v, 8); }
  absl::Status String(std::string_view what, std::string* s) {
    uint32_t n = 0;
    if (auto st = U32(what, &n); !st.ok()) return st;
    return Bytes(what, n, s);
  }
  absl::Status Blob(std::string_view what, std::string_view* s) {
    uint64_t n = 0;
    if (auto st = U64(what, &n); !st.ok()) return st;
    if (n > in_.size()) return Short(what);
    *s = in_.substr(0, n);
    in_.remove_prefix(n);
    return absl::OkStatus();
  }
  size_t left() const { return in_.size(); }

 private:
  absl::Status Short(std::string_view what) {
    return absl::DataLossError(absl::StrCat("payload ends inside ", Av(what)));
  }
  absl::Status Raw(std::string_view what, void* v, size_t n) {
    if (in_.size() < n) return Short(what);
    std::memcpy(v, in_.data(), n);
    in_.remove_prefix(n);
    return absl::OkStatus();
  }
  absl::Status Bytes(std::string_view what, uint64_t n, std::string* s) {
    if (n > in_.size()) return Short(what);
    s->assign(in_.data(), n);
    in_.remove_prefix(n);
    return absl::OkStatus();
  }
  std::string_view in_;
};

// A private temporary directory, removed with everything in it when the object dies: fastText
// trains from and saves to files only.
class TempDir {
 public:
  static absl::StatusOr<TempDir> Create() {
    std::error_code ec;
    std::string pattern = (std::filesystem::temp_directory_path(ec) / "persona-ft-XXXXXX").string();
    if (ec) pattern = "/tmp/persona-ft-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError(
          absl::StrCat("cannot create a temporary directory: ", std::strerror(errno)));
    }
    return TempDir(std::move(pattern));
  }
  TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(std::string_view name) const { return absl::StrCat(path_, "/", Av(name)); }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

std::string VersionFor(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "sentiment-%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

std::string SentimentTokens(std::string_view text) { return SentimentTokenizer().Run(text); }

absl::StatusOr<std::vector<SentimentExample>> LoadSentimentCorpus(const std::string& path) {
  auto bytes = ReadWholeFile(path);
  if (!bytes.ok()) return bytes.status();
  if (EndsWith(path, ".jsonl") || EndsWith(path, ".json")) return LoadReviewJsonl(path, *bytes);
  if (EndsWith(path, ".csv")) return LoadChineseCsv(path, *bytes);
  return LoadUci(path, *bytes);
}

SentimentSplit SplitSentimentExamples(std::span<const SentimentExample> examples, uint64_t seed) {
  SentimentSplit split;
  const std::string salt = absl::StrCat("persona-sentiment-split:", seed, ":");
  for (const SentimentExample& e : examples) {
    const uint64_t bucket = Hash64(absl::StrCat(salt, e.text)) % 100;
    if (bucket < 70) {
      split.train.push_back(e);
    } else if (bucket < 80) {
      split.validation.push_back(e);
    } else {
      split.test.push_back(e);
    }
  }
  return split;
}

SentimentModel::SentimentModel() = default;
SentimentModel::SentimentModel(SentimentModel&&) noexcept = default;
SentimentModel& SentimentModel::operator=(SentimentModel&&) noexcept = default;
SentimentModel::~SentimentModel() = default;

namespace {

absl::Status CheckOptions(const SentimentTrainOptions::Classifier& o, std::string_view name) {
  const auto bad = [&](std::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(Av(name), " ", Av(what)));
  };
  if (o.epochs < 1 || o.epochs > 1000) return bad("epochs must be 1..1000");
  if (!(o.lr > 0 && o.lr <= 10)) return bad("lr must be in (0, 10]");
  if (o.dim < 1 || o.dim > 1000) return bad("dim must be 1..1000");
  if (o.word_ngrams < 1 || o.word_ngrams > 5) return bad("word_ngrams must be 1..5");
  if (o.word_ngrams > 1 && (o.buckets < 1 || o.buckets > 20'000'000)) {
    return bad("buckets must be 1..20000000 with word n-grams");
  }
  return absl::OkStatus();
}

// Trains one fastText classifier on already tokenised lines ("__label__N tokens") and returns
// the model bytes FastText::saveModel writes.
absl::StatusOr<std::string> TrainFastText(const std::vector<std::string>& lines,
                                          const SentimentTrainOptions::Classifier& c,
                                          const SentimentTrainOptions& o,
                                          const std::function<void(double)>& progress) {
  auto dir = TempDir::Create();
  if (!dir.ok()) return dir.status();
  const std::string train_path = dir->File("train.txt");
  {
    std::ofstream out(train_path, std::ios::binary);
    for (const std::string& line : lines) out << line << '\n';
    if (!out.flush()) return absl::InternalError(absl::StrCat("cannot write ", train_path));
  }
  fasttext::Args args;
  args.input = train_path;
  args.output = dir->File("model");
  args.model = fasttext::model_name::sup;
  args.loss = fasttext::loss_name::softmax;
  args.lr = c.lr;
  args.dim = c.dim;
  args.epoch = c.epochs;
  args.wordNgrams = c.word_ngrams;
  args.bucket = c.word_ngrams > 1 ? c.buckets : 0;
  args.minn = 0;  // no character n-grams: CJK characters are already tokens
  args.maxn = 0;
  args.minCount = o.min_count;
  args.thread = o.threads;
  args.seed = static_cast<int>(o.seed & 0x7fffffff);
  args.verbose = 0;
  try {
    fasttext::FastText ft;
    // fastText calls back from every training thread.
    std::mutex progress_mu;
    fasttext::FastText::TrainCallback callback;
    if (progress) {
      callback = [&](float fraction, float, double, double, int64_t) {
        std::lock_guard lock(progress_mu);
        progress(fraction);
      };
    }
    ft.train(args, callback);
    const std::string model_path = dir->File("model.bin");
    ft.saveModel(model_path);
    return ReadWholeFile(model_path);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("fastText training failed: ", e.what()));
  }
}

}  // namespace

bool SentimentModel::IsCjkText(std::string_view text) {
  size_t cjk = 0, ascii_letters = 0;
  for (size_t i = 0; i < text.size();) {
    char32_t c;
    const size_t n = DecodeUtf8(text, i, &c);
    if (n == 0) {
      ++i;
      continue;
    }
    i += n;
    if (IsCjk(c)) {
      ++cjk;
    } else if (IsAsciiAlpha(c)) {
      ++ascii_letters;
    }
  }
  return cjk > 0 && cjk >= ascii_letters;
}

absl::StatusOr<SentimentModel> SentimentModel::Train(
    std::span<const SentimentExample> examples, const SentimentTrainOptions& o,
    const std::function<void(double fraction, double loss)>& progress) {
  // fastText reports bad arguments by throwing or, in places, by exit(): check everything first.
  if (auto s = CheckOptions(o.latin, "latin"); !s.ok()) return s;
  if (auto s = CheckOptions(o.cjk, "cjk"); !s.ok()) return s;
  if (o.min_count < 1) return absl::InvalidArgumentError("min_count must be >= 1");
  if (o.threads < 1 || o.threads > 256) return absl::InvalidArgumentError("threads must be 1..256");

  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> lines[2];
  uint64_t positives[2] = {0, 0};
  for (const SentimentExample& e : examples) {
    std::string tokens = SentimentTokens(e.text);
    if (tokens.empty()) continue;
    const Script script = IsCjkText(e.text) ? kCjk : kLatin;
    lines[script].push_back(
        absl::StrCat(Av(e.label == 1 ? kPositiveLabel : kNegativeLabel), " ", tokens));
    positives[script] += e.label == 1;
  }
  const uint64_t used = lines[kLatin].size() + lines[kCjk].size();
  if (used == 0) return absl::InvalidArgumentError("no training example has any token");
  // A script is trainable with both labels; one without is left to the other classifier.
  bool trainable[2];
  for (int s : {kLatin, kCjk}) {
    trainable[s] = positives[s] > 0 && positives[s] < lines[s].size();
  }
  if (!trainable[kLatin] && !trainable[kCjk]) {
    return absl::InvalidArgumentError(
        "training examples must include both positive and negative labels (within one script)");
  }

  SentimentModel model;
  const double total_lines = static_cast<double>((trainable[kLatin] ? lines[kLatin].size() : 0) +
                                                 (trainable[kCjk] ? lines[kCjk].size() : 0));
  double done_lines = 0;
  for (Script script : {kLatin, kCjk}) {
    if (!trainable[script]) continue;
    const double share = lines[script].size() / total_lines;
    std::function<void(double)> report;
    if (progress) {
      report = [&, share](double fraction) { progress(done_lines + share * fraction, 0.0); };
    }
    auto bytes = TrainFastText(lines[script], script == kCjk ? o.cjk : o.latin, o, report);
    if (!bytes.ok()) return bytes.status();
    if (auto s = model.LoadFastText(script, *bytes); !s.ok()) return s;
    done_lines += share;
  }

  model.version_ = VersionFor(std::time(nullptr));
  model.metrics_.train_examples = used;
  model.metrics_.train_positive_fraction =
      static_cast<double>(positives[kLatin] + positives[kCjk]) / used;
  model.metrics_.train_accuracy = model.Evaluate(examples, "train", "train").accuracy;
  model.metrics_.train_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return model;
}

absl::Status SentimentModel::LoadFastText(Script script, std::string_view bytes) {
  if (bytes.size() < 8) return absl::DataLossError("fastText model bytes are truncated");
  int32_t magic, version;
  std::memcpy(&magic, bytes.data(), 4);
  std::memcpy(&version, bytes.data() + 4, 4);
  if (magic != kFastTextMagic || version != kFastTextVersion) {
    return absl::DataLossError(absl::StrCat("fastText model bytes have magic ", magic, " version ",
                                            version, " (expected ", kFastTextMagic, " version ",
                                            kFastTextVersion, ")"));
  }
  auto ft = std::make_unique<fasttext::FastText>();
  try {
    std::istringstream in(std::string(bytes.substr(8)), std::ios::binary);
    ft->loadModel(in);
    if (!in) return absl::DataLossError("fastText model bytes end early");
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("fastText model bytes are unreadable: ", e.what()));
  }
  const auto dict = ft->getDictionary();
  if (ft->getArgs().model != fasttext::model_name::sup || dict->nlabels() != 2) {
    return absl::DataLossError("fastText model is not a two-label classifier");
  }
  int32_t positive = -1;
  for (int32_t i = 0; i < dict->nlabels(); ++i) {
    if (dict->getLabel(i) == kPositiveLabel) positive = i;
  }
  if (positive < 0) return absl::DataLossError("fastText model has no __label__1");
  fasttext_[script] = std::move(ft);
  positive_label_[script] = positive;
  return absl::OkStatus();
}

double SentimentModel::Positive(std::string_view text) const {
  Script script = IsCjkText(text) ? kCjk : kLatin;
  if (fasttext_[script] == nullptr) script = script == kCjk ? kLatin : kCjk;
  return PositiveWith(script, text);
}

double SentimentModel::PositiveWith(Script script, std::string_view text) const {
  const fasttext::FastText& ft = *fasttext_[script];
  // Dictionary::getLine does the word lookups and the word n-gram hashing exactly as training
  // did; the trailing newline adds the end-of-sentence word every training line had.
  std::string line = SentimentTokens(text);
  line.push_back('\n');
  std::istringstream in(std::move(line));
  std::vector<int32_t> words, labels;
  ft.getDictionary()->getLine(in, words, labels);
  fasttext::Predictions predictions;
  ft.predict(2, words, predictions, 0.0);
  for (const auto& [log_prob, label] : predictions) {
    if (label == positive_label_[script]) {
      return std::clamp(std::exp(static_cast<double>(log_prob)), 0.0, 1.0);
    }
  }
  // Only the other label came back (k=2 makes that impossible) or there were no words.
  return predictions.empty() ? 0.5 : 0.0;
}

SentimentAccuracy SentimentModel::Evaluate(std::span<const SentimentExample> examples,
                                           std::string corpus, std::string split) const {
  SentimentAccuracy row{std::move(corpus), std::move(split), 0, 0, examples.size()};
  if (examples.empty()) return row;
  uint64_t correct = 0, positives = 0;
  for (const SentimentExample& e : examples) {
    correct += (Positive(e.text) >= 0.5) == (e.label == 1);
    positives += e.label == 1;
  }
  const double n = static_cast<double>(examples.size());
  row.accuracy = correct / n;
  row.baseline = std::max<double>(positives, examples.size() - positives) / n;
  return row;
}

absl::Status SentimentModel::Save(const std::string& path) const {
  auto dir = TempDir::Create();
  if (!dir.ok()) return dir.status();
  std::vector<std::pair<Script, std::string>> classifiers;
  for (Script script : {kLatin, kCjk}) {
    if (fasttext_[script] == nullptr) continue;
    try {
      const std::string ft_path = dir->File("model.bin");
      fasttext_[script]->saveModel(ft_path);
      auto read = ReadWholeFile(ft_path);
      if (!read.ok()) return read.status();
      classifiers.emplace_back(script, std::move(*read));
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("fastText save failed: ", e.what()));
    }
  }
  PayloadWriter p;
  p.String(kKindSentiment);
  p.String(version_);
  p.String(metadata_json_);
  p.U32(kTokenizerVersion);
  p.U64(metrics_.train_examples);
  p.F64(metrics_.train_positive_fraction);
  p.F64(metrics_.train_accuracy);
  p.F64(metrics_.train_seconds);
  p.U32(static_cast<uint32_t>(metrics_.held_out.size()));
  for (const SentimentAccuracy& a : metrics_.held_out) {
    p.String(a.corpus);
    p.String(a.split);
    p.F64(a.accuracy);
    p.F64(a.baseline);
    p.U64(a.n);
  }
  p.U32(static_cast<uint32_t>(classifiers.size()));
  for (const auto& [script, bytes] : classifiers) {
    p.String(script == kCjk ? "cjk" : "latin");
    p.Blob(bytes);
  }

  return WriteModelArtifact(path, p.str());
}

absl::StatusOr<std::shared_ptr<const SentimentModel>> SentimentModel::Load(
    const std::string& path) {
  auto payload = ReadModelArtifact(path);
  if (!payload.ok()) return payload.status();
  auto bad = [&path](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("model ", path, ": ", what));
  };

  PayloadReader in(*payload);
  std::string kind;
  if (auto s = in.String("model kind", &kind); !s.ok()) return bad(s.message());
  if (kind != kKindSentiment) {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", path, ": model kind is '", kind, "', not sentiment"));
  }
  SentimentModel model;
  uint32_t tokenizer = 0, held_out = 0;
  SentimentMetrics& m = model.metrics_;
  for (absl::Status s :
       {in.String("version", &model.version_), in.String("metadata", &model.metadata_json_),
        in.U32("tokenizer version", &tokenizer), in.U64("train_examples", &m.train_examples),
        in.F64("train_positive_fraction", &m.train_positive_fraction),
        in.F64("train_accuracy", &m.train_accuracy), in.F64("train_seconds", &m.train_seconds),
        in.U32("held-out row count", &held_out)}) {
    if (!s.ok()) return bad(s.message());
  }
  if (tokenizer != kTokenizerVersion) {
    return absl::InvalidArgumentError(absl::StrCat("model ", path, ": tokenizer version ",
                                                   tokenizer, " is not this build's ",
                                                   kTokenizerVersion, " (retrain the model)"));
  }
  // Each row needs at least 32 bytes: bounds the reservation for a hostile count.
  if (held_out > in.left() / 32) return bad("implausible held-out row count");
  for (uint32_t i = 0; i < held_out; ++i) {
    SentimentAccuracy a;
    for (absl::Status s :
         {in.String("held-out corpus", &a.corpus), in.String("held-out split", &a.split),
          in.F64("held-out accuracy", &a.accuracy), in.F64("held-out baseline", &a.baseline),
          in.U64("held-out n", &a.n)}) {
      if (!s.ok()) return bad(s.message());
    }
    m.held_out.push_back(std::move(a));
  }
  uint32_t classifiers = 0;
  if (auto s = in.U32("classifier count", &classifiers); !s.ok()) return bad(s.message());
  if (classifiers < 1 || classifiers > 2) {
    return bad(absl::StrCat("classifier count ", classifiers, " is not 1 or 2"));
  }
  for (uint32_t i = 0; i < classifiers; ++i) {
    std::string script_name;
    std::string_view ft_bytes;
    if (auto s = in.String("classifier script", &script_name); !s.ok()) return bad(s.message());
    if (script_name != "latin" && script_name != "cjk") {
      return bad(absl::StrCat("unknown classifier script '", script_name, "'"));
    }
    const Script script = script_name == "cjk" ? kCjk : kLatin;
    if (model.fasttext_[script] != nullptr) {
      return bad(absl::StrCat("two ", script_name, " classifiers"));
    }
    if (auto s = in.Blob("fastText model", &ft_bytes); !s.ok()) return bad(s.message());
    if (auto s = model.LoadFastText(script, ft_bytes); !s.ok()) return bad(s.message());
  }
  if (in.left() != 0) return bad(absl::StrCat(in.left(), " unparsed payload bytes"));
  return std::make_shared<const SentimentModel>(std::move(model));
}

}  // namespace persona
