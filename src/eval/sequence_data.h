// Item sequences for training and offline evaluation of next-item recommenders, read from the
// public `sequence` files (../shared/datasets/amazon-sequences): either one `user item` pair per
// line (SASRec's data/*.txt, users' items in order) or one line per user `user item1 item2 ...`
// (S3Rec's data/*.txt). The format is detected per file; the public protocol splits each user's
// sequence leave-one-out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace persona {

// Items are dense indices 1..num_items (0 is padding for sequence models); item_names[i] is the
// token of index i in the source (item_names[0] is empty).
struct SequenceDataset {
  uint32_t num_items = 0;
  std::vector<std::string> item_names;
  std::vector<std::string> user_names;
  std::vector<std::vector<uint32_t>> sequences;  // per user, oldest first
  uint64_t interactions() const;
};

// Reads a sequence file. Integer item tokens 1..N keep their numbers as indices (so results
// are comparable with published code); any other tokens are numbered in order of first sight.
// Errors name the line (InvalidArgument "line 12: ...").
absl::StatusOr<SequenceDataset> ReadSequenceFile(const std::string& path);
// Same, from text already in memory (`name` is used in error messages).
absl::StatusOr<SequenceDataset> ParseSequenceText(std::string_view text, std::string_view name);

// Leave-one-out split of one user (the SASRec protocol): the last item is the test target, the
// second-to-last the validation target, the rest is training. Users with fewer than 3 items keep
// everything in training and have no targets (valid == test == 0).
struct LeaveOneOut {
  std::vector<uint32_t> train;
  uint32_t valid = 0;
  uint32_t test = 0;
};
LeaveOneOut SplitLeaveOneOut(const std::vector<uint32_t>& sequence);

}  // namespace persona
