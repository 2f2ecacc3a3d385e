#include "gen/generator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "common/hash.h"
#include "event/validate.h"
#include "gen/testing/parsed_stream.h"

namespace persona::gen {
namespace {

using gen_testing::GenerateParsed;
using gen_testing::GenerateText;
using gen_testing::ParsedEvent;

GenOptions SmallOptions(GenOptions::Format format = GenOptions::Format::kJsonl) {
  GenOptions o;
  o.events = 50000;
  o.users = 3000;
  o.items = 10000;
  o.seed = 7;
  o.format = format;
  return o;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(GeneratorTest, SameSeedGivesIdenticalBytesInEveryFormat) {
  for (auto format :
       {GenOptions::Format::kJsonl, GenOptions::Format::kTaobao, GenOptions::Format::kCsv}) {
    GenOptions o = SmallOptions(format);
    o.late_fraction = 0.01;
    const std::string a = GenerateText(o);
    const std::string b = GenerateText(o);
    ASSERT_FALSE(a.empty());
    EXPECT_TRUE(a == b) << "format " << static_cast<int>(format) << " is not deterministic";
    std::string text_a, text_b, truth_a, truth_b;
    EventGenerator ga(o), gb(o);
    while (ga.WriteLines(10000, &text_a) > 0) {
    }
    while (gb.WriteLines(7777, &text_b) > 0) {  // chunking must not matter either
    }
    EXPECT_TRUE(text_a == text_b);
    EXPECT_TRUE(text_a == a);
    ga.WriteGroundTruth(&truth_a);
    gb.WriteGroundTruth(&truth_b);
    EXPECT_FALSE(truth_a.empty());
    EXPECT_EQ(truth_a, truth_b);
  }
}

TEST(GeneratorTest, DifferentSeedGivesADifferentStream) {
  GenOptions o = SmallOptions();
  const std::string a = GenerateText(o);
  o.seed = 8;
  const std::string b = GenerateText(o);
  EXPECT_NE(a, b);
  // Not merely shifted ids: the first lines differ in content.
  EXPECT_NE(Lines(a)[0].substr(Lines(a)[0].find("\"user_id\"")),
            Lines(b)[0].substr(Lines(b)[0].find("\"user_id\"")));
}

TEST(GeneratorTest, WritesExactlyTheRequestedNumberOfEventsInEveryFormat) {
  for (auto format :
       {GenOptions::Format::kJsonl, GenOptions::Format::kTaobao, GenOptions::Format::kCsv}) {
    GenOptions o = SmallOptions(format);
    o.events = 12345;
    o.late_fraction = 0.05;
    EventGenerator gen(o);
    std::string text;
    uint64_t total = 0;
    for (uint64_t n; (n = gen.WriteLines(1000, &text)) > 0;) total += n;
    EXPECT_EQ(total, 12345u);
    EXPECT_EQ(gen.delivered(), 12345u);
    const size_t header = format == GenOptions::Format::kCsv ? 1 : 0;
    EXPECT_EQ(Lines(text).size(), 12345u + header);
    EXPECT_EQ(gen.WriteLines(1000, &text), 0u);  // done stays done
  }
}

TEST(GeneratorTest, EveryJsonlLineParsesWithTheFieldsItsTypeRequires) {
  GenOptions o = SmallOptions();
  std::string error;
  const std::vector<ParsedEvent> events = GenerateParsed(o, &error);
  ASSERT_EQ(events.size(), o.events) << error;
  absl::flat_hash_set<std::string> types;
  for (const ParsedEvent& e : events) {
    SCOPED_TRACE(e.event_id);
    ASSERT_FALSE(e.event_id.empty());
    ASSERT_FALSE(e.user_id.empty());
    ASSERT_FALSE(e.session_id.empty());
    ASSERT_FALSE(e.device.empty());
    ASSERT_TRUE(ParseEventType(e.type).has_value()) << e.type;
    ASSERT_GE(e.ts, o.start_ms);
    types.insert(e.type);
    if (e.type == "search") {
      EXPECT_FALSE(e.query.empty());
      EXPECT_TRUE(e.item_id.empty());
      continue;
    }
    // Every other event is about an item of a leaf category, with its price.
    ASSERT_FALSE(e.item_id.empty());
    ASSERT_EQ(std::count(e.category_path.begin(), e.category_path.end(), '.'), 2)
        << e.category_path;
    ASSERT_TRUE(e.has_price);
    ASSERT_GT(e.price, 0);
    if (e.type == "purchase" || e.type == "refund") {
      EXPECT_GE(e.quantity, 1);
      EXPECT_FALSE(e.order_id.empty());
    }
    if (e.type == "review") {
      EXPECT_GE(e.rating, 1);
      EXPECT_LE(e.rating, 5);
      EXPECT_FALSE(e.text.empty());
    }
  }
  for (const char* t :
       {"view", "search", "cart", "remove_cart", "fav", "purchase", "review", "refund"}) {
    EXPECT_TRUE(types.contains(t)) << "no " << t << " in 50k events";
  }
}

TEST(GeneratorTest, EventsFromNextPassTheEventStageValidation) {
  GenOptions o = SmallOptions();
  o.late_fraction = 0.01;
  EventGenerator gen(o);
  const ValidationLimits limits;
  absl::flat_hash_set<std::string> event_ids;
  uint64_t seen = 0;
  EventBatch batch;
  while (gen.Next(4096, &batch)) {
    ASSERT_EQ(batch.events.size(), batch.source_index.size());
    for (size_t i = 0; i < batch.events.size(); ++i) {
      const Event& e = batch.events[i];
      const auto rejection = ValidateEvent(e, limits, /*price_optional=*/false);
      ASSERT_FALSE(rejection.has_value())
          << "event " << seen << " (" << EventTypeName(e.type) << ") rejected: " << rejection->field
          << " " << rejection->rule;
      ASSERT_EQ(batch.source_index[i], seen);
      ASSERT_EQ(e.id_hash, Hash64(e.event_id));
      ASSERT_TRUE(event_ids.insert(std::string(e.event_id)).second) << "duplicate event_id";
      ++seen;
    }
    batch = EventBatch{};  // the arena goes with the batch: views must not point elsewhere
  }
  EXPECT_EQ(seen, o.events);
  EXPECT_FALSE(gen.Next(4096, &batch));
  EXPECT_TRUE(batch.events.empty());
}

TEST(GeneratorTest, NextAndWriteLinesProduceTheSameEvents) {
  const GenOptions o = SmallOptions();
  EventGenerator gen(o);
  EventBatch batch;
  while (gen.Next(10000, &batch)) {
  }
  std::string error;
  const std::vector<ParsedEvent> lines = GenerateParsed(o, &error);
  ASSERT_EQ(lines.size(), batch.events.size()) << error;
  for (size_t i = 0; i < lines.size(); ++i) {
    const Event& e = batch.events[i];
    const ParsedEvent& p = lines[i];
    ASSERT_EQ(p.event_id, e.event_id);
    ASSERT_EQ(p.user_id, e.user_id);
    ASSERT_EQ(p.type, EventTypeName(e.type));
    ASSERT_EQ(p.ts, e.ts_ms);
    ASSERT_EQ(p.item_id, e.item_id);
    ASSERT_EQ(p.category_path, e.category_path);
    ASSERT_EQ(p.brand, e.brand);
    ASSERT_EQ(p.has_price, e.has_price());
    if (p.has_price) {
      ASSERT_EQ(p.price, e.price);
    }
    ASSERT_EQ(p.quantity, e.quantity);
    ASSERT_EQ(p.order_id, e.order_id);
    ASSERT_EQ(p.query, e.query);
    ASSERT_EQ(p.rating, e.rating);
    ASSERT_EQ(p.text, e.text);
    ASSERT_EQ(p.session_id, e.session_id);
    ASSERT_EQ(p.device, e.device);
  }
}

TEST(GeneratorTest, TaobaoLinesAreTheFiveColumnCsvOfTheSameStream) {
  GenOptions o = SmallOptions(GenOptions::Format::kTaobao);
  const std::vector<std::string> taobao = Lines(GenerateText(o));
  std::string error;
  const std::vector<ParsedEvent> native = GenerateParsed(o, &error);
  ASSERT_FALSE(native.empty()) << error;
  // The taobao stream is the native one without the behaviours taobao does not log (so it runs
  // further into the native stream to deliver the same count).
  size_t n = 0;
  int64_t last_seconds = 0;
  for (const ParsedEvent& e : native) {
    const char* behaviour = e.type == "view"       ? "pv"
                            : e.type == "cart"     ? "cart"
                            : e.type == "fav"      ? "fav"
                            : e.type == "purchase" ? "buy"
                                                   : nullptr;
    if (behaviour == nullptr) continue;
    ASSERT_LT(n, taobao.size());
    std::vector<std::string> cols;
    std::stringstream line(taobao[n]);
    for (std::string c; std::getline(line, c, ',');) cols.push_back(c);
    ASSERT_EQ(cols.size(), 5u) << taobao[n];
    EXPECT_EQ(cols[0], e.user_id);
    EXPECT_EQ(cols[1], e.item_id);
    EXPECT_FALSE(cols[2].empty());
    EXPECT_TRUE(std::all_of(cols[2].begin(), cols[2].end(), ::isdigit)) << cols[2];
    EXPECT_EQ(cols[3], behaviour);
    const int64_t seconds = std::stoll(cols[4]);
    EXPECT_EQ(seconds, e.ts / 1000);
    EXPECT_GE(seconds, last_seconds);
    last_seconds = seconds;
    ++n;
  }
  EXPECT_GE(n, taobao.size() * 9 / 10);
}

TEST(GeneratorTest, CsvStartsWithItsHeaderAndEveryRowHasAllColumns) {
  const std::vector<std::string> lines =
      Lines(GenerateText(SmallOptions(GenOptions::Format::kCsv)));
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0],
            "event_id,user_id,type,ts,item_id,category_path,brand,price,quantity,order_id,query,"
            "rating,text,session_id,device");
  auto columns = [](const std::string& row) {
    int n = 1;
    bool quoted = false;
    for (char c : row) {
      if (c == '"')
        quoted = !quoted;
      else if (c == ',' && !quoted)
        ++n;
    }
    return n;
  };
  for (size_t i = 1; i < lines.size(); ++i) ASSERT_EQ(columns(lines[i]), 15) << lines[i];
}

TEST(GeneratorTest, TimeNeverGoesBackwardsWithoutLateEventsAndFillsTheSpan) {
  GenOptions o = SmallOptions();
  o.events = 200000;
  o.users = 20000;
  std::string error;
  const std::vector<ParsedEvent> events = GenerateParsed(o, &error);
  ASSERT_EQ(events.size(), o.events) << error;
  for (size_t i = 1; i < events.size(); ++i) {
    ASSERT_LE(events[i - 1].ts, events[i].ts) << "event " << i << " goes back in time";
  }
  // Activity is calibrated to the span: the stream starts at once and ends near start + span.
  EXPECT_LT(events.front().ts - o.start_ms, kHourMs);
  const double covered =
      static_cast<double>(events.back().ts - o.start_ms) / static_cast<double>(o.span_ms);
  EXPECT_GT(covered, 0.85);
  EXPECT_LT(covered, 1.2);
}

TEST(GeneratorTest, LateEventsAreTheConfiguredFewAndAtMostFifteenMinutesLate) {
  GenOptions o = SmallOptions();
  o.events = 100000;
  o.late_fraction = 0.02;
  std::string error;
  const std::vector<ParsedEvent> events = GenerateParsed(o, &error);
  ASSERT_EQ(events.size(), o.events) << error;
  int64_t high_water = 0;
  int late = 0;
  for (const ParsedEvent& e : events) {
    if (e.ts < high_water) {
      ++late;
      ASSERT_LE(high_water - e.ts, 15 * kMinuteMs);
    }
    high_water = std::max(high_water, e.ts);
  }
  // A late event counts only if something newer overtook it, so slightly under the fraction.
  EXPECT_GT(late, 0.01 * o.events);
  EXPECT_LT(late, 0.025 * o.events);
}

TEST(GeneratorTest, MemoryDoesNotGrowWithTheNumberOfEvents) {
  GenOptions o;  // default catalog and users
  o.events = 2'000'000;
  o.users = 20000;
  o.items = 50000;
  o.format = GenOptions::Format::kTaobao;
  EventGenerator gen(o);
  std::string chunk;
  ASSERT_EQ(gen.WriteLines(100000, &chunk), 100000u);
  const size_t after_first_chunk = gen.MemoryBytes();
  uint64_t total = 100000;
  for (uint64_t n; (n = (chunk.clear(), gen.WriteLines(100000, &chunk))) > 0;) total += n;
  EXPECT_EQ(total, o.events);
  // Per-user and per-item state only: not one byte more after 20x the events.
  EXPECT_EQ(gen.MemoryBytes(), after_first_chunk);

  // With late events the delay buffer exists, but is bounded by the delay, not the stream.
  o.late_fraction = 0.05;
  EventGenerator late_gen(o);
  chunk.clear();
  late_gen.WriteLines(200000, &chunk);
  const size_t late_after_first = late_gen.MemoryBytes();
  while ((chunk.clear(), late_gen.WriteLines(100000, &chunk)) > 0) {
  }
  EXPECT_LE(late_gen.MemoryBytes(), late_after_first + 64 * 1024);
}

TEST(GeneratorTest, NextReturnsFalseOnlyWhenNothingWasAppended) {
  GenOptions o = SmallOptions();
  o.events = 10;
  EventGenerator gen(o);
  EventBatch batch;
  EXPECT_TRUE(gen.Next(7, &batch));
  EXPECT_EQ(batch.events.size(), 7u);
  EXPECT_TRUE(gen.Next(7, &batch));  // the last 3, appended
  EXPECT_EQ(batch.events.size(), 10u);
  EXPECT_FALSE(gen.Next(7, &batch));
  EXPECT_EQ(batch.events.size(), 10u);
}

TEST(GeneratorTest, OutOfRangeOptionsAreClampedNotFatal) {
  GenOptions o;
  o.events = 100;
  o.users = 0;
  o.items = 0;
  o.top_categories = 0;
  o.shift_fraction = 2;
  o.bot_fraction = -1;
  o.start_ms = 0;
  EXPECT_FALSE(ValidateGenOptions(o).ok());
  EventGenerator gen(o);
  std::string text;
  EXPECT_EQ(gen.WriteLines(1000, &text), 100u);
}

TEST(GeneratorTest, ValidateGenOptionsNamesTheBadField) {
  EXPECT_TRUE(ValidateGenOptions(GenOptions{}).ok());
  auto message = [](auto mutate) {
    GenOptions o;
    mutate(o);
    const absl::Status s = ValidateGenOptions(o);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    return std::string(s.message());
  };
  EXPECT_NE(message([](GenOptions& o) { o.users = 0; }).find("users"), std::string::npos);
  EXPECT_NE(message([](GenOptions& o) { o.items = 3; }).find("items"), std::string::npos);
  EXPECT_NE(message([](GenOptions& o) { o.top_categories = 1; }).find("top_categories"),
            std::string::npos);
  EXPECT_NE(message([](GenOptions& o) { o.start_ms = 0; }).find("start_ms"), std::string::npos);
  EXPECT_NE(message([](GenOptions& o) { o.late_fraction = 1.5; }).find("late_fraction"),
            std::string::npos);
  EXPECT_NE(message([](GenOptions& o) {
              o.shift_fraction = 0.6;
              o.bot_fraction = 0.6;
            }).find("<= 1"),
            std::string::npos);
}

class RunGenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("persona_gen_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static std::string Read(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::filesystem::path dir_;
};

TEST_F(RunGenTest, WritesTheStreamAndTheGroundTruthFiles) {
  GenOptions o = SmallOptions();
  o.events = 20000;
  const auto out = dir_ / "events.jsonl";
  const auto truth = dir_ / "truth.jsonl";
  ASSERT_TRUE(RunGen(o, out.string(), truth.string(), /*progress=*/false).ok());
  const std::string text = Read(out);
  EXPECT_EQ(text, GenerateText(o));
  EXPECT_EQ(Lines(text).size(), 20000u);
  EventGenerator gen(o);
  std::string sink, expected_truth;
  while (gen.WriteLines(100000, &sink) > 0) {
  }
  gen.WriteGroundTruth(&expected_truth);
  EXPECT_FALSE(expected_truth.empty());
  EXPECT_EQ(Read(truth), expected_truth);
}

TEST_F(RunGenTest, FailsCleanlyOnBadOptionsAndUnwritablePaths) {
  GenOptions bad = SmallOptions();
  bad.users = 0;
  EXPECT_EQ(RunGen(bad, (dir_ / "x").string(), "", false).code(),
            absl::StatusCode::kInvalidArgument);
  const std::string missing_dir = (dir_ / "no" / "such" / "dir" / "out.jsonl").string();
  const absl::Status s = RunGen(SmallOptions(), missing_dir, "", false);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(missing_dir), std::string::npos) << s;
  // A bad truth path fails before any event is generated.
  const absl::Status t = RunGen(SmallOptions(), (dir_ / "ok.jsonl").string(), missing_dir, false);
  EXPECT_FALSE(t.ok());
  EXPECT_NE(t.message().find(missing_dir), std::string::npos) << t;
}

}  // namespace
}  // namespace persona::gen
