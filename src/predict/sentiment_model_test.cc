#include "predict/sentiment_model.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "gtest/gtest.h"

namespace persona {
namespace {

// A scratch directory removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("sentiment_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, std::string_view bytes) const {
    const std::string p = (path_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

TEST(SentimentTokensTest, LowercasesAsciiWordsAndKeepsExclamationAndQuestion) {
  EXPECT_EQ(SentimentTokens("Great phone, GREAT value!!!"), "great phone great value !");
  EXPECT_EQ(SentimentTokens("Why?! Broken... again?"), "why ? ! broken again ?");
  EXPECT_EQ(SentimentTokens("  "), "");
}

TEST(SentimentTokensTest, SplitsContractionsSoNegationIsItsOwnToken) {
  EXPECT_EQ(SentimentTokens("I didn't like it"), "i did n't like it");
  EXPECT_EQ(SentimentTokens("It's NOT good"), "it 's not good");
  EXPECT_EQ(SentimentTokens("won\xe2\x80\x99t work"), "wo n't work");  // typographic apostrophe
  EXPECT_EQ(SentimentTokens("rock 'n' roll"), "rock n roll");          // not a contraction
}

TEST(SentimentTokensTest, ChineseBecomesCharactersThenBigrams) {
  EXPECT_EQ(SentimentTokens("很好用"), "很 好 用 很好 好用");
  EXPECT_EQ(SentimentTokens("好"), "好");
  // Full-width punctuation separates runs; mixed scripts are handled run by run.
  EXPECT_EQ(SentimentTokens("iPhone很好，不错！"), "iphone 很 好 很好 不 错 不错 !");
}

TEST(SentimentTokensTest, FoldsFullWidthDropsBomAndSurvivesInvalidUtf8) {
  EXPECT_EQ(SentimentTokens("\xef\xbb\xbf"
                            "Good"),
            "good");
  EXPECT_EQ(SentimentTokens("ＧＯＯＤ１"), "good1");
  EXPECT_EQ(SentimentTokens("café crème"), "café crème");
  EXPECT_EQ(SentimentTokens("bad\xff\xfe"
                            "day \xe5"),
            "bad day");
  EXPECT_EQ(SentimentTokens("love it \xf0\x9f\x98\x8d"), "love it \xf0\x9f\x98\x8d");
}

TEST(LoadSentimentCorpusTest, ReadsUciTabSeparatedSentences) {
  ScratchDir dir;
  const auto path = dir.Write("uci.txt", "Good case.\t1\r\nBad, bad.  \t0\n\n\t1\n");
  auto c = LoadSentimentCorpus(path);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 2u);  // the empty sentence is skipped
  EXPECT_EQ((*c)[0].text, "Good case.");
  EXPECT_EQ((*c)[0].label, 1);
  EXPECT_EQ((*c)[1].label, 0);
  auto bad = LoadSentimentCorpus(dir.Write("bad.txt", "fine\t1\nno label here\n"));
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_NE(bad.status().message().find(":2:"), std::string::npos) << bad.status();
  EXPECT_TRUE(absl::IsNotFound(LoadSentimentCorpus(dir.File("missing.txt")).status()));
}

TEST(LoadSentimentCorpusTest, ReadsChineseCsvWithBomQuotesAndCommas) {
  ScratchDir dir;
  const auto path = dir.Write("reviews.csv",
                              "cat,label,review\n"
                              "书籍,1,\xef\xbb\xbf很好\n"
                              "书籍,0,\"质量差, 不推荐\"\n"
                              "水果,1,\"多行\n评论 \"\"好\"\"\"\n"
                              "水果,0,不好,退货\n");
  auto c = LoadSentimentCorpus(path);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 4u);
  EXPECT_EQ((*c)[0].text, "很好");
  EXPECT_EQ((*c)[1].text, "质量差, 不推荐");
  EXPECT_EQ((*c)[1].label, 0);
  EXPECT_EQ((*c)[2].text, "多行\n评论 \"好\"");
  EXPECT_EQ((*c)[3].text, "不好,退货");
  auto bad = LoadSentimentCorpus(dir.Write("bad.csv", "cat,label,review\n书籍,yes,好\n"));
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
}

TEST(LoadSentimentCorpusTest, ReadsAmazonJsonlStarsDroppingThreeStarReviews) {
  ScratchDir dir;
  const auto path =
      dir.Write("reviews.jsonl",
                "{\"reviewText\": \"works\", \"overall\": 5.0, \"summary\": \"Five Stars\"}\n"
                "{\"reviewText\": \"meh\", \"overall\": 3.0}\n"
                "{\"reviewText\": \"broke\", \"overall\": 1}\n"
                "{\"reviewText\": \"ok\", \"overall\": 4.0, \"summary\": \"\"}\n");
  auto c = LoadSentimentCorpus(path);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 3u);
  EXPECT_EQ((*c)[0].text, "Five Stars. works");
  EXPECT_EQ((*c)[0].label, 1);
  EXPECT_EQ((*c)[1].text, "broke");
  EXPECT_EQ((*c)[1].label, 0);
  EXPECT_EQ((*c)[2].text, "ok");
  auto bad = LoadSentimentCorpus(dir.Write("bad.jsonl", "{\"overall\": 5}\n"));
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
}

TEST(SplitSentimentExamplesTest, SeededSplitKeepsDuplicatesTogether) {
  std::vector<SentimentExample> examples;
  for (int i = 0; i < 5000; ++i) examples.push_back({"review " + std::to_string(i), i % 2});
  for (int i = 0; i < 50; ++i) examples.push_back({"the same review", 1});
  const SentimentSplit a = SplitSentimentExamples(examples, 1);
  const SentimentSplit b = SplitSentimentExamples(examples, 1);
  const SentimentSplit c = SplitSentimentExamples(examples, 2);
  EXPECT_EQ(a.test.size(), b.test.size());
  EXPECT_NE(a.test.size(), c.test.size());
  const double n = static_cast<double>(examples.size());
  EXPECT_NEAR(a.train.size() / n, 0.7, 0.03);
  EXPECT_NEAR(a.validation.size() / n, 0.1, 0.02);
  EXPECT_NEAR(a.test.size() / n, 0.2, 0.03);
  int parts_with_duplicate = 0;
  for (const auto* part : {&a.train, &a.validation, &a.test}) {
    int count = 0;
    for (const auto& e : *part) count += e.text == "the same review";
    EXPECT_TRUE(count == 0 || count == 50);
    parts_with_duplicate += count > 0;
  }
  EXPECT_EQ(parts_with_duplicate, 1);
}

// A planted corpus: positive and negative words among neutral filler, and "not" flipping a
// positive word. Returns `n` examples.
std::vector<SentimentExample> PlantedCorpus(int n, uint32_t seed) {
  const std::vector<std::string> pos = {"great", "excellent", "love", "perfect", "好评"};
  const std::vector<std::string> neg = {"awful", "broken", "hate", "refund", "差评"};
  const std::vector<std::string> filler = {"the", "phone", "case", "it", "was", "item", "box"};
  std::mt19937 rng(seed);
  std::vector<SentimentExample> out;
  for (int i = 0; i < n; ++i) {
    const int label = static_cast<int>(rng() % 2);
    std::string text = filler[rng() % filler.size()] + " " + filler[rng() % filler.size()];
    if (label == 1) {
      text += " " + pos[rng() % pos.size()];
    } else if (rng() % 3 == 0) {
      text += " not " + pos[rng() % 4];  // negated praise is negative
    } else {
      text += " " + neg[rng() % neg.size()];
    }
    text += " " + filler[rng() % filler.size()];
    out.push_back({text, label});
  }
  return out;
}

SentimentTrainOptions FastOptions() {
  SentimentTrainOptions o;
  for (auto* c : {&o.latin, &o.cjk}) {
    c->epochs = 20;
    c->dim = 16;
    c->buckets = 10000;
  }
  return o;
}

TEST(SentimentModelTest, LearnsPlantedWordsAndNegation) {
  auto model = SentimentModel::Train(PlantedCorpus(2000, 1), FastOptions());
  ASSERT_TRUE(model.ok()) << model.status();
  const auto held_out = PlantedCorpus(500, 2);
  const SentimentAccuracy acc = model->Evaluate(held_out, "planted", "test");
  EXPECT_GE(acc.accuracy, 0.97);
  EXPECT_LE(acc.baseline, 0.6);
  EXPECT_EQ(acc.n, 500u);
  EXPECT_GT(model->Positive("the phone was great"), 0.8);
  EXPECT_LT(model->Positive("the phone was not great"), 0.2);
  EXPECT_LT(model->Positive("box broken"), 0.2);
  EXPECT_GT(model->Positive("好评"), 0.8);
  for (const char* text : {"", "???", "unseen words only"}) {
    const double p = model->Positive(text);
    EXPECT_GE(p, 0.0);
    EXPECT_LE(p, 1.0);
  }
  EXPECT_EQ(model->metrics().train_examples, 2000u);
  EXPECT_GE(model->metrics().train_accuracy, 0.97);
  EXPECT_EQ(model->version().rfind("sentiment-", 0), 0u) << model->version();
}

TEST(SentimentModelTest, ChineseAndEnglishGetTheirOwnClassifiers) {
  EXPECT_TRUE(SentimentModel::IsCjkText("质量很好"));
  EXPECT_FALSE(SentimentModel::IsCjkText("iPhone很好用"));  // 6 letters outnumber 3 CJK
  EXPECT_TRUE(SentimentModel::IsCjkText("iPhone手机质量很好用"));
  EXPECT_FALSE(SentimentModel::IsCjkText("great phone 好评"));
  EXPECT_FALSE(SentimentModel::IsCjkText("!!!"));
  std::vector<SentimentExample> corpus = PlantedCorpus(1000, 10);
  // Chinese reviews where the planted words mean the opposite of their English neighbours would
  // if the scripts shared a classifier: "好" is positive, "差" negative.
  std::mt19937 rng(11);
  const std::vector<std::string> filler = {"这个", "东西", "物流", "包装", "手机"};
  for (int i = 0; i < 1000; ++i) {
    const int label = static_cast<int>(rng() % 2);
    corpus.push_back(
        {filler[rng() % filler.size()] + (label ? "很好" : "太差") + filler[rng() % filler.size()],
         label});
  }
  auto model = SentimentModel::Train(corpus, FastOptions());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE(model->has_latin());
  EXPECT_TRUE(model->has_cjk());
  EXPECT_GT(model->Positive("物流很好"), 0.8);
  EXPECT_LT(model->Positive("包装太差"), 0.2);
  EXPECT_GT(model->Positive("the item was excellent"), 0.8);

  // With Chinese examples only, English text is scored by the Chinese classifier (its bias).
  std::vector<SentimentExample> chinese(corpus.begin() + 1000, corpus.end());
  auto only_cjk = SentimentModel::Train(chinese, FastOptions());
  ASSERT_TRUE(only_cjk.ok()) << only_cjk.status();
  EXPECT_FALSE(only_cjk->has_latin());
  const double p = only_cjk->Positive("excellent");
  EXPECT_GT(p, 0.2);
  EXPECT_LT(p, 0.8);
}

TEST(SentimentModelTest, SameSeedSameModel) {
  const auto corpus = PlantedCorpus(500, 3);
  auto a = SentimentModel::Train(corpus, FastOptions());
  auto b = SentimentModel::Train(corpus, FastOptions());
  ASSERT_TRUE(a.ok() && b.ok());
  for (const char* text : {"the item great", "box not love", "hate it"}) {
    EXPECT_DOUBLE_EQ(a->Positive(text), b->Positive(text)) << text;
  }
}

TEST(SentimentModelTest, RejectsUntrainableInputBeforeFastTextSeesIt) {
  const auto corpus = PlantedCorpus(100, 4);
  std::vector<SentimentExample> one_label;
  for (const auto& e : corpus)
    if (e.label == 1) one_label.push_back(e);
  EXPECT_TRUE(absl::IsInvalidArgument(SentimentModel::Train(one_label, FastOptions()).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(SentimentModel::Train({}, FastOptions()).status()));
  // A corpus whose texts have no token at all cannot train.
  const std::vector<SentimentExample> blank = {{"  ", 1}, {"\t", 0}};
  EXPECT_TRUE(absl::IsInvalidArgument(SentimentModel::Train(blank, FastOptions()).status()));
  for (auto mutate : std::vector<void (*)(SentimentTrainOptions&)>{
           [](SentimentTrainOptions& o) { o.latin.epochs = 0; },
           [](SentimentTrainOptions& o) { o.cjk.lr = -1; },
           [](SentimentTrainOptions& o) { o.latin.dim = 0; },
           [](SentimentTrainOptions& o) { o.cjk.buckets = 0; },
           [](SentimentTrainOptions& o) { o.threads = 0; },
           [](SentimentTrainOptions& o) { o.latin.word_ngrams = 9; }}) {
    SentimentTrainOptions o = FastOptions();
    mutate(o);
    EXPECT_TRUE(absl::IsInvalidArgument(SentimentModel::Train(corpus, o).status()));
  }
}

TEST(SentimentModelTest, SaveLoadRoundTripKeepsPredictionsVersionAndMetrics) {
  ScratchDir dir;
  auto model = SentimentModel::Train(PlantedCorpus(1000, 5), FastOptions());
  ASSERT_TRUE(model.ok()) << model.status();
  model->mutable_metrics().held_out.push_back({"planted", "test", 0.98, 0.51, 500});
  model->set_metadata_json("{\"corpora\":[\"planted\"]}");
  const std::string path = dir.File("m.pst");
  ASSERT_TRUE(model->Save(path).ok());
  auto loaded = SentimentModel::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->version(), model->version());
  EXPECT_EQ((*loaded)->metadata_json(), model->metadata_json());
  EXPECT_EQ((*loaded)->metrics().train_examples, 1000u);
  ASSERT_EQ((*loaded)->metrics().held_out.size(), 1u);
  EXPECT_EQ((*loaded)->metrics().held_out[0].corpus, "planted");
  EXPECT_DOUBLE_EQ((*loaded)->metrics().held_out[0].accuracy, 0.98);
  EXPECT_EQ((*loaded)->metrics().held_out[0].n, 500u);
  for (const char* text : {"the item great", "box not love", "hate it", "好评"}) {
    EXPECT_DOUBLE_EQ((*loaded)->Positive(text), model->Positive(text)) << text;
  }
}

TEST(SentimentModelTest, CorruptTruncatedOrForeignFilesAreRefused) {
  ScratchDir dir;
  auto model = SentimentModel::Train(PlantedCorpus(300, 6), FastOptions());
  ASSERT_TRUE(model.ok()) << model.status();
  const std::string path = dir.File("m.pst");
  ASSERT_TRUE(model->Save(path).ok());
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  auto truncated = SentimentModel::Load(dir.Write("t.pst", bytes.substr(0, bytes.size() / 2)));
  EXPECT_TRUE(absl::IsDataLoss(truncated.status())) << truncated.status();
  EXPECT_NE(truncated.status().message().find("truncated"), std::string::npos);

  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  auto corrupt = SentimentModel::Load(dir.Write("c.pst", flipped));
  EXPECT_TRUE(absl::IsDataLoss(corrupt.status())) << corrupt.status();
  EXPECT_NE(corrupt.status().message().find("checksum"), std::string::npos);

  auto trailing = SentimentModel::Load(dir.Write("g.pst", bytes + "x"));
  EXPECT_TRUE(absl::IsDataLoss(trailing.status())) << trailing.status();

  auto foreign = SentimentModel::Load(dir.Write("f.pst", "not a model at all"));
  EXPECT_TRUE(absl::IsInvalidArgument(foreign.status())) << foreign.status();
  EXPECT_TRUE(absl::IsNotFound(SentimentModel::Load(dir.File("none.pst")).status()));
}

TEST(SentimentModelTest, ConcurrentScoringMatchesSequential) {
  auto model = SentimentModel::Train(PlantedCorpus(1000, 7), FastOptions());
  ASSERT_TRUE(model.ok()) << model.status();
  const auto texts = PlantedCorpus(200, 8);
  std::vector<double> expected;
  for (const auto& e : texts) expected.push_back(model->Positive(e.text));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          mismatches[t] += model->Positive(texts[i].text) != expected[i];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST(SentimentModelTest, ScoringAReviewTakesWellUnder100Microseconds) {
  auto model = SentimentModel::Train(PlantedCorpus(1000, 9), FastOptions());
  ASSERT_TRUE(model.ok()) << model.status();
  // ~130 words, a long review (the UCI sentences average 11, the Amazon reviews ~90).
  std::string review;
  for (int i = 0; i < 10; ++i) review += "the phone case was great but not perfect, ";
  constexpr int kCalls = 2000;
  double sink = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) sink += model->Positive(review);
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
      kCalls;
  EXPECT_GT(sink, 0);
#if defined(__SANITIZE_ADDRESS__)
  constexpr double kLimitUs = 1000;  // sanitizers slow everything ~5-10x
#else
  constexpr double kLimitUs = 100;
#endif
  EXPECT_LT(us, kLimitUs) << us << " us per review";
  RecordProperty("positive_us", std::to_string(us));
}

// Real data, kept small so that the test stays fast: train on the UCI Amazon + Yelp train parts,
// score the Amazon held-out test part. The targets are checked by `persona eval sentiment`
// on all corpora (README/BENCHMARKS); this proves the pipeline learns real text at all.
TEST(SentimentModelTest, UciSentencesBeatTheMajorityBaselineByFar) {
  const std::string dir = std::string(PERSONA_DATASETS) + "/reviews/";
  if (!std::filesystem::exists(dir + "amazon_cells_labelled.txt")) {
    GTEST_SKIP() << "dataset not present: " << dir;
  }
  auto amazon = LoadSentimentCorpus(dir + "amazon_cells_labelled.txt");
  auto yelp = LoadSentimentCorpus(dir + "yelp_labelled.txt");
  ASSERT_TRUE(amazon.ok() && yelp.ok());
  const SentimentSplit a = SplitSentimentExamples(*amazon, 1);
  const SentimentSplit y = SplitSentimentExamples(*yelp, 1);
  std::vector<SentimentExample> train = a.train;
  train.insert(train.end(), y.train.begin(), y.train.end());
  SentimentTrainOptions o;
  o.latin.buckets = 20000;
  auto model = SentimentModel::Train(train, o);
  ASSERT_TRUE(model.ok()) << model.status();
  const SentimentAccuracy acc = model->Evaluate(a.test, "amazon_cells", "test");
  EXPECT_GE(acc.accuracy, 0.75) << "baseline " << acc.baseline << " n " << acc.n;
  EXPECT_GE(acc.accuracy, acc.baseline + 0.15);
}

}  // namespace
}  // namespace persona
