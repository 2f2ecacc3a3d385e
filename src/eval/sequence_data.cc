#include "eval/sequence_data.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace persona {
namespace {

// Integer item ids keep their numbers only while the index range stays dense enough that the
// per-item arrays (scores, embeddings) sized by the largest id are not mostly empty: a slice of
// SASRec's Video.txt keeps its ids, shop product ids like 1004856 are interned instead.
constexpr uint64_t kMaxNumericId = uint64_t{1} << 24;
constexpr uint64_t kMaxIdsPerDistinctItem = 16;

struct Line {
  uint64_t number = 0;  // 1-based, for error messages
  std::vector<std::string_view> tokens;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

void Tokenize(std::string_view line, std::vector<std::string_view>& tokens) {
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !IsSpace(line[i])) ++i;
    if (i > start) tokens.push_back(line.substr(start, i - start));
  }
}

// The value of a canonical positive decimal integer ("12", not "012" or "+12"), 0 otherwise.
uint64_t CanonicalPositiveInteger(std::string_view token) {
  if (token.empty() || token.size() > 19 || token[0] == '0') return 0;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
  if (ec != std::errc() || end != token.data() + token.size()) return 0;
  return value;
}

// Debian's Abseil has its own string_view, which StrCat's AlphaNum takes; std's is not converted.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status LineError(std::string_view name, uint64_t line, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(Sv(name), ": line ", line, ": ", Sv(what)));
}

}  // namespace

uint64_t SequenceDataset::interactions() const {
  uint64_t total = 0;
  for (const auto& s : sequences) total += s.size();
  return total;
}

absl::StatusOr<SequenceDataset> ParseSequenceText(std::string_view text, std::string_view name) {
  std::vector<Line> lines;
  uint64_t line_number = 0;
  bool pairs = true;
  uint64_t first_non_pair_line = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    ++line_number;
    Line line{line_number, {}};
    Tokenize(text.substr(pos, end - pos), line.tokens);
    pos = end + 1;
    if (line.tokens.empty()) continue;
    if (line.tokens.size() == 1) {
      return LineError(name, line_number,
                       absl::StrCat("user '", Sv(line.tokens[0]),
                                    "' has no items (expected `user item` "
                                    "or `user item1 item2 ...`)"));
    }
    if (line.tokens.size() != 2 && pairs) {
      pairs = false;
      first_non_pair_line = line_number;
    }
    lines.push_back(std::move(line));
  }

  // Decide how items are numbered: keep integer ids when every item token is one and the range
  // is dense, otherwise number tokens in order of first sight.
  bool numeric = true;
  uint64_t max_id = 0;
  {
    absl::flat_hash_map<std::string_view, uint32_t> distinct;
    for (const Line& line : lines) {
      for (size_t t = 1; t < line.tokens.size() && numeric; ++t) {
        uint64_t id = CanonicalPositiveInteger(line.tokens[t]);
        if (id == 0 || id > kMaxNumericId) numeric = false;
        max_id = std::max(max_id, id);
        distinct.emplace(line.tokens[t], 0);
      }
      if (!numeric) break;
    }
    if (numeric && max_id > kMaxIdsPerDistinctItem * distinct.size()) numeric = false;
  }

  SequenceDataset data;
  data.item_names.emplace_back();
  absl::flat_hash_map<std::string_view, uint32_t> item_index;
  if (numeric) {
    data.num_items = static_cast<uint32_t>(max_id);
    data.item_names.reserve(max_id + 1);
    for (uint64_t i = 1; i <= max_id; ++i) data.item_names.push_back(std::to_string(i));
  }
  absl::flat_hash_map<std::string_view, uint32_t> user_index;
  // The line where each user was first seen: a one-line-per-user file must not repeat a user.
  std::vector<uint64_t> user_line;
  for (const Line& line : lines) {
    auto [it, inserted] =
        user_index.emplace(line.tokens[0], static_cast<uint32_t>(data.user_names.size()));
    if (inserted) {
      data.user_names.emplace_back(line.tokens[0]);
      data.sequences.emplace_back();
      user_line.push_back(line.number);
    } else if (!pairs) {
      std::string hint =
          first_non_pair_line == line.number || first_non_pair_line == 0
              ? std::string()
              : absl::StrCat(" (if this is a `user item` pairs file, line ", first_non_pair_line,
                             " does not have exactly 2 tokens)");
      return LineError(
          name, line.number,
          absl::StrCat("user '", Sv(line.tokens[0]), "' already had line ", user_line[it->second],
                       "; a one-line-per-user file lists each user once", hint));
    }
    std::vector<uint32_t>& sequence = data.sequences[it->second];
    for (size_t t = 1; t < line.tokens.size(); ++t) {
      std::string_view token = line.tokens[t];
      if (numeric) {
        sequence.push_back(static_cast<uint32_t>(CanonicalPositiveInteger(token)));
        continue;
      }
      auto [item, new_item] =
          item_index.emplace(token, static_cast<uint32_t>(data.item_names.size()));
      if (new_item) data.item_names.emplace_back(token);
      sequence.push_back(item->second);
    }
  }
  if (!numeric) data.num_items = static_cast<uint32_t>(data.item_names.size() - 1);
  return data;
}

absl::StatusOr<SequenceDataset> ReadSequenceFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open sequence file ", path));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return ParseSequenceText(text, path);
}

LeaveOneOut SplitLeaveOneOut(const std::vector<uint32_t>& sequence) {
  LeaveOneOut split;
  if (sequence.size() < 3) {
    split.train = sequence;
    return split;
  }
  split.train.assign(sequence.begin(), sequence.end() - 2);
  split.valid = sequence[sequence.size() - 2];
  split.test = sequence.back();
  return split;
}

}  // namespace persona
