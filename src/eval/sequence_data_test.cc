#include "eval/sequence_data.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace persona {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(SequenceDataTest, PairsFormatKeepsIntegerIdsAndUserOrder) {
  auto data = ParseSequenceText("7 3\n7 1\n\n2 5\n2 3\n7 4\n", "pairs");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->num_items, 5u);  // the largest id, even though 2 never occurs
  ASSERT_EQ(data->item_names.size(), 6u);
  EXPECT_EQ(data->item_names[0], "");
  EXPECT_EQ(data->item_names[4], "4");
  EXPECT_THAT(data->user_names, ElementsAre("7", "2"));
  // User 7 comes back after user 2: its item is appended in file order.
  EXPECT_THAT(data->sequences[0], ElementsAre(3, 1, 4));
  EXPECT_THAT(data->sequences[1], ElementsAre(5, 3));
  EXPECT_EQ(data->interactions(), 5u);
}

TEST(SequenceDataTest, OneLinePerUserFormat) {
  auto data = ParseSequenceText("u1 1 2 3\r\nu2\t4  2\n", "lines");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->num_items, 4u);
  EXPECT_THAT(data->user_names, ElementsAre("u1", "u2"));
  EXPECT_THAT(data->sequences[0], ElementsAre(1, 2, 3));
  EXPECT_THAT(data->sequences[1], ElementsAre(4, 2));
}

TEST(SequenceDataTest, NonIntegerItemsAreNumberedInOrderOfFirstSight) {
  auto data = ParseSequenceText("a B07 A01 B07\nb X9 A01\n", "names");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->num_items, 3u);
  EXPECT_THAT(data->item_names, ElementsAre("", "B07", "A01", "X9"));
  EXPECT_THAT(data->sequences[0], ElementsAre(1, 2, 1));
  EXPECT_THAT(data->sequences[1], ElementsAre(3, 2));
}

TEST(SequenceDataTest, MixedOrNonCanonicalIntegersAreInterned) {
  // One name among integers, a zero, or a leading zero: the numbers cannot be indices.
  for (const char* text : {"u 5 x 7\n", "u 0 3 2\n", "u 3 007 2\n"}) {
    auto data = ParseSequenceText(text, "t");
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_EQ(data->num_items, 3u) << text;
    EXPECT_THAT(data->sequences[0], ElementsAre(1, 2, 3)) << text;
  }
}

TEST(SequenceDataTest, SparseHugeIdsAreInternedNotAllocated) {
  auto data = ParseSequenceText("u 1004856 5100337\n", "t");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->num_items, 2u);
  EXPECT_THAT(data->item_names, ElementsAre("", "1004856", "5100337"));
}

TEST(SequenceDataTest, UserWithoutItemsNamesTheLine) {
  auto data = ParseSequenceText("1 2 3\n\n2 4 5\nlonely\n", "f.txt");
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(data.status().message(), HasSubstr("f.txt: line 4"));
  EXPECT_THAT(data.status().message(), HasSubstr("lonely"));
}

TEST(SequenceDataTest, PairsFileWithAStrayLongLineIsRejectedWithAHint) {
  // Not every line has 2 tokens, so this is read as one line per user, where user 1 repeats.
  auto data = ParseSequenceText("1 10\n1 11\n2 10\n2 12 13\n", "f.txt");
  ASSERT_FALSE(data.ok());
  EXPECT_THAT(data.status().message(), HasSubstr("line 2: user '1' already had line 1"));
  EXPECT_THAT(data.status().message(), HasSubstr("line 4 does not have exactly 2 tokens"));
}

TEST(SequenceDataTest, EmptyTextIsAnEmptyDataset) {
  auto data = ParseSequenceText("\n  \n", "t");
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->num_items, 0u);
  EXPECT_TRUE(data->sequences.empty());
}

TEST(SequenceDataTest, MissingFileIsNotFound) {
  auto data = ReadSequenceFile("/nonexistent/sequences.txt");
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
}

TEST(SequenceDataTest, ReadsAFile) {
  auto path = std::filesystem::path(::testing::TempDir()) / "sequence_data_test.txt";
  std::ofstream(path) << "1 3\n1 2\n";
  auto data = ReadSequenceFile(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->sequences[0], ElementsAre(3, 2));
}

TEST(SplitLeaveOneOutTest, LastIsTestSecondToLastIsValid) {
  LeaveOneOut split = SplitLeaveOneOut({4, 5, 6, 7});
  EXPECT_THAT(split.train, ElementsAre(4, 5));
  EXPECT_EQ(split.valid, 6u);
  EXPECT_EQ(split.test, 7u);
  split = SplitLeaveOneOut({4, 5, 6});
  EXPECT_THAT(split.train, ElementsAre(4));
}

TEST(SplitLeaveOneOutTest, ShortSequencesHaveNoTargets) {
  LeaveOneOut split = SplitLeaveOneOut({4, 5});
  EXPECT_THAT(split.train, ElementsAre(4, 5));
  EXPECT_EQ(split.valid, 0u);
  EXPECT_EQ(split.test, 0u);
}

// The real files: counts from ../shared/datasets/README.md.
struct DatasetCounts {
  const char* file;
  size_t users;
  uint32_t items;
  uint64_t interactions;
};

class RealSequenceFileTest : public ::testing::TestWithParam<DatasetCounts> {};

TEST_P(RealSequenceFileTest, MatchesPublishedCounts) {
  const std::string path = std::string(PERSONA_DATASETS) + "/amazon-sequences/" + GetParam().file;
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "dataset file " << path << " is absent";
  auto data = ReadSequenceFile(path);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->sequences.size(), GetParam().users);
  EXPECT_EQ(data->num_items, GetParam().items);
  EXPECT_EQ(data->interactions(), GetParam().interactions);
  EXPECT_EQ(data->user_names.front(), "1");
}

INSTANTIATE_TEST_SUITE_P(
    AmazonSequences, RealSequenceFileTest,
    ::testing::Values(DatasetCounts{"Video.txt", 31013, 23715, 287107},
                      DatasetCounts{"Toys_and_Games.txt", 19412, 11924, 167597},
                      DatasetCounts{"Sports_and_Outdoors.txt", 35598, 18357, 296337}));

}  // namespace
}  // namespace persona
