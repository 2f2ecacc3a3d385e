#include "event/event_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "common/time_util.h"

namespace persona {
namespace {

using ::testing::ElementsAre;

// A reader's whole output flattened to comparable text, so that different read sizes and sources
// can be checked for identical results.
struct Transcript {
  std::vector<std::string> events;  // "line:user:item:type:ts"
  std::vector<std::string> issues;  // "line:field:rule:raw"
  uint64_t bytes_read = 0;
  uint64_t lines_read = 0;
  bool operator==(const Transcript&) const = default;
};

void PrintTo(const Transcript& t, std::ostream* os) {
  *os << t.events.size() << " events, " << t.issues.size() << " issues, " << t.lines_read
      << " lines, " << t.bytes_read << " bytes";
}

Transcript Drain(EventReader& reader, size_t max_events = 1000) {
  Transcript t;
  EventBatch batch;
  std::vector<EventIssue> issues;
  uint64_t last_bytes = 0;
  while (reader.Next(max_events, &batch, &issues)) {
    EXPECT_LE(batch.events.size(), max_events);
    EXPECT_EQ(batch.events.size(), batch.source_index.size());
    EXPECT_GE(reader.bytes_read(), last_bytes);
    last_bytes = reader.bytes_read();
    for (size_t i = 0; i < batch.events.size(); ++i) {
      const Event& e = batch.events[i];
      t.events.push_back(std::to_string(batch.source_index[i]) + ":" + std::string(e.user_id) +
                         ":" + std::string(e.item_id) + ":" + std::string(EventTypeName(e.type)) +
                         ":" + std::to_string(e.ts_ms));
    }
  }
  EXPECT_TRUE(batch.events.empty());
  for (const EventIssue& i : issues) {
    t.issues.push_back(std::to_string(i.index_or_line) + ":" + i.field + ":" + i.rule + ":" +
                       i.raw);
  }
  t.bytes_read = reader.bytes_read();
  t.lines_read = reader.lines_read();
  EXPECT_TRUE(reader.status().ok()) << reader.status();
  return t;
}

Transcript ReadText(const std::string& text, InputFormat format, size_t chunk_bytes,
                    size_t max_events = 1000) {
  EventReaderOptions options;
  options.chunk_bytes = chunk_bytes;
  auto reader = EventReader::OpenText(text, format, ValidationLimits(), options);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return {};
  return Drain(**reader, max_events);
}

std::string WriteTempFile(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + "/event_reader_test_" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

// A taobao file exercising every line-splitting case: BOM on line 1, CRLF, blank lines (also a
// CR-only one), a bad line, and a last line without newline.
const std::string kTaobaoText =
    "\xEF\xBB\xBF"
    "1,10,100,pv,1511544070\r\n"
    "1,11,100,cart,1511544071\n"
    "\n"
    "\r\n"
    "2,20,200,xx,1511544072\n"
    "2,21,200,buy,1511544073\r\n"
    "   \n"
    "3,30,300,fav,1511544074";

TEST(EventReaderTest, StripsBomAndCrlfAndCountsPhysicalLines) {
  const Transcript t = ReadText(kTaobaoText, InputFormat::kTaobao, 1 << 20);
  EXPECT_THAT(t.events, ElementsAre("1:1:10:view:1511544070000", "2:1:11:cart:1511544071000",
                                    "6:2:21:purchase:1511544073000", "8:3:30:fav:1511544074000"));
  EXPECT_THAT(t.issues,
              ElementsAre("5:behavior:must be pv, cart, fav or buy:2,20,200,xx,1511544072"));
  EXPECT_EQ(t.lines_read, 8u);
  EXPECT_EQ(t.bytes_read, kTaobaoText.size());
}

TEST(EventReaderTest, ResultsDoNotDependOnReadSize) {
  const Transcript reference = ReadText(kTaobaoText, InputFormat::kTaobao, 1 << 20);
  for (size_t chunk : {1, 2, 3, 5, 7, 16, 23, 64}) {
    EXPECT_EQ(ReadText(kTaobaoText, InputFormat::kTaobao, chunk).events, reference.events) << chunk;
    EXPECT_EQ(ReadText(kTaobaoText, InputFormat::kTaobao, chunk).issues, reference.issues) << chunk;
  }
  const std::string rees46 =
      "\xEF\xBB\xBF"
      "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,"
      "user_session\r\n"
      "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,s\r\n"
      "2019-10-01 00:00:01 UTC,purchase,3,4,a.b,\"x,y\",1.5,7,s\r\n";
  const Transcript rees_reference = ReadText(rees46, InputFormat::kRees46, 1 << 20);
  ASSERT_EQ(rees_reference.events.size(), 2u);
  for (size_t chunk : {1, 4, 13, 97}) {
    EXPECT_EQ(ReadText(rees46, InputFormat::kRees46, chunk), rees_reference) << chunk;
  }
}

TEST(EventReaderTest, BatchesHoldAtMostMaxEventsAndKeepTheirBlockAlive) {
  std::string text;
  for (int i = 0; i < 10; ++i) text += "u" + std::to_string(i) + ",i,c,pv,1511544070\n";
  auto reader = EventReader::OpenText(text, InputFormat::kTaobao, ValidationLimits());
  ASSERT_TRUE(reader.ok());
  std::vector<size_t> sizes;
  std::vector<EventBatch> kept;
  std::vector<EventIssue> issues;
  EventBatch batch;
  while ((*reader)->Next(3, &batch, &issues)) {
    sizes.push_back(batch.events.size());
    kept.push_back(std::move(batch));
  }
  EXPECT_THAT(sizes, ElementsAre(3u, 3u, 3u, 1u));
  reader->reset();  // the batches must not need the reader
  EXPECT_EQ(kept[3].events[0].user_id, "u9");
  EXPECT_EQ(kept[0].events[0].user_id, "u0");
}

TEST(EventReaderTest, BadLinesCountTowardTheBatchLimit) {
  std::string text;
  for (int i = 0; i < 10; ++i) text += "garbage\n";
  auto reader = EventReader::OpenText(text, InputFormat::kTaobao, ValidationLimits());
  ASSERT_TRUE(reader.ok());
  std::vector<EventIssue> issues;
  EventBatch batch;
  ASSERT_TRUE((*reader)->Next(4, &batch, &issues));
  EXPECT_EQ(issues.size(), 4u);
  while ((*reader)->Next(4, &batch, &issues)) {
  }
  EXPECT_EQ(issues.size(), 10u);
  EXPECT_EQ(issues.back().index_or_line, 10u);
}

TEST(EventReaderTest, OverlongLineIsOneIssueAndReadingContinues) {
  const std::string text = "1,10,100,pv,1511544070\n" + std::string(500, 'x') +
                           "\n2,20,200,pv,1511544071\n" + std::string(300, 'y');
  EventReaderOptions options;
  options.chunk_bytes = 16;
  options.max_line_bytes = 100;
  auto reader = EventReader::OpenText(text, InputFormat::kTaobao, ValidationLimits(), options);
  ASSERT_TRUE(reader.ok());
  const Transcript t = Drain(**reader);
  EXPECT_THAT(t.events, ElementsAre("1:1:10:view:1511544070000", "3:2:20:view:1511544071000"));
  ASSERT_EQ(t.issues.size(), 2u);
  EXPECT_THAT(t.issues[0], ::testing::StartsWith("2::line longer than 100 bytes:xxxx"));
  EXPECT_THAT(t.issues[1], ::testing::StartsWith("4::line longer than 100 bytes:yyyy"));
  EXPECT_EQ(t.bytes_read, text.size());
}

TEST(EventReaderTest, FileAndTextGiveTheSameResultAndFileSizeIsKnown) {
  const std::string path = WriteTempFile("taobao.csv", kTaobaoText);
  auto reader = EventReader::Open(path, InputFormat::kTaobao, ValidationLimits());
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->file_size(), kTaobaoText.size());
  EXPECT_EQ(Drain(**reader), ReadText(kTaobaoText, InputFormat::kTaobao, 1 << 20));
  std::filesystem::remove(path);
}

TEST(EventReaderTest, LivePipeYieldsLinesBeforeTheWriterFinishes) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::promise<void> first_batch_seen;
  std::future<void> seen = first_batch_seen.get_future();
  // jthread: joined even when an assertion below returns early.
  std::jthread writer([&] {
    const std::string first = "1,10,100,pv,1511544070\n";
    const std::string second = "2,20,200,pv,1511544071\n";
    ASSERT_EQ(::write(fds[1], first.data(), first.size()), static_cast<ssize_t>(first.size()));
    // A reader that waited for a full block would only see both lines after this timeout.
    seen.wait_for(std::chrono::seconds(5));
    ASSERT_EQ(::write(fds[1], second.data(), second.size()), static_cast<ssize_t>(second.size()));
    ::close(fds[1]);
  });
  auto reader = EventReader::Open("/dev/fd/" + std::to_string(fds[0]), InputFormat::kTaobao,
                                  ValidationLimits());
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->file_size(), 0u);
  EventBatch batch;
  std::vector<EventIssue> issues;
  ASSERT_TRUE((*reader)->Next(1000, &batch, &issues));
  ASSERT_EQ(batch.events.size(), 1u);
  EXPECT_EQ(batch.events[0].user_id, "1");
  first_batch_seen.set_value();
  ASSERT_TRUE((*reader)->Next(1000, &batch, &issues));
  ASSERT_EQ(batch.events.size(), 1u);
  EXPECT_EQ(batch.events[0].user_id, "2");
  EXPECT_FALSE((*reader)->Next(1000, &batch, &issues));
  ::close(fds[0]);
}

TEST(EventReaderTest, OpenReportsMissingFilesDirectoriesAndEmptyHeaders) {
  auto missing = EventReader::Open("/nonexistent/x.csv", InputFormat::kTaobao, ValidationLimits());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), ::testing::HasSubstr("/nonexistent/x.csv"));
  auto dir = EventReader::Open(::testing::TempDir(), InputFormat::kTaobao, ValidationLimits());
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string empty = WriteTempFile("empty.csv", "");
  EXPECT_EQ(EventReader::Open(empty, InputFormat::kCsv, ValidationLimits()).status().message(),
            "empty input: expected a csv header row");
  auto headerless = EventReader::Open(empty, InputFormat::kTaobao, ValidationLimits());
  ASSERT_TRUE(headerless.ok());
  EventBatch batch;
  std::vector<EventIssue> issues;
  EXPECT_FALSE((*headerless)->Next(10, &batch, &issues));
  std::filesystem::remove(empty);
}

// --- the first 2,000 lines of the real datasets ---

struct SliceCounts {
  size_t events = 0;
  size_t issues = 0;
  std::map<EventType, size_t> by_type;
  std::vector<EventIssue> first_issues;
};

// Reads the first `lines` lines of a dataset file through a real file. Skips when absent.
std::optional<SliceCounts> ReadSlice(const std::string& relative, InputFormat format,
                                     int lines = 2000) {
  const std::string source = std::string(PERSONA_DATASETS) + "/" + relative;
  std::ifstream in(source, std::ios::binary);
  if (!in) return std::nullopt;
  std::string head, line;
  for (int i = 0; i < lines && std::getline(in, line); ++i) head += line + "\n";
  const std::string path = WriteTempFile(std::filesystem::path(relative).filename(), head);
  auto reader = EventReader::Open(path, format, ValidationLimits());
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return SliceCounts();
  SliceCounts counts;
  EventBatch batch;
  std::vector<EventIssue> issues;
  while ((*reader)->Next(512, &batch, &issues)) {
    counts.events += batch.events.size();
    for (const Event& e : batch.events) ++counts.by_type[e.type];
  }
  EXPECT_EQ((*reader)->lines_read(), static_cast<uint64_t>(lines));
  EXPECT_EQ((*reader)->bytes_read(), head.size());
  counts.issues = issues.size();
  issues.resize(std::min<size_t>(issues.size(), 5));
  counts.first_issues = issues;
  std::filesystem::remove(path);
  return counts;
}

#define SKIP_IF_ABSENT(counts, file)                                   \
  if (!(counts))                                                       \
  GTEST_SKIP() << "dataset file " << PERSONA_DATASETS << "/" << (file) \
               << " is absent; see ../shared/datasets/README.md"

TEST(RealDataTest, TaobaoByUserSliceIsAllValid) {
  const auto counts = ReadSlice("taobao/UserBehavior-by-user.csv", InputFormat::kTaobao);
  SKIP_IF_ABSENT(counts, "taobao/UserBehavior-by-user.csv");
  // The file's out-of-window timestamps (35 rows outside 2017-11-25..12-03, e.g. 2017-09-11) lie
  // beyond this slice, and all are after 2000 anyway: nothing here may be rejected.
  EXPECT_EQ(counts->events, 2000u);
  EXPECT_EQ(counts->issues, 0u);
  EXPECT_EQ(counts->by_type.at(EventType::kView), 1842u);
  EXPECT_EQ(counts->by_type.at(EventType::kCart), 83u);
  EXPECT_EQ(counts->by_type.at(EventType::kFav), 43u);
  EXPECT_EQ(counts->by_type.at(EventType::kPurchase), 32u);
}

TEST(RealDataTest, Rees46HeadSliceIsAllValid) {
  const auto counts = ReadSlice("rees46/2019-Oct-head.csv", InputFormat::kRees46);
  SKIP_IF_ABSENT(counts, "rees46/2019-Oct-head.csv");
  EXPECT_EQ(counts->events, 1999u);  // line 1 is the header
  EXPECT_EQ(counts->issues, 0u);
  EXPECT_EQ(counts->by_type.at(EventType::kView), 1972u);
  EXPECT_EQ(counts->by_type.at(EventType::kCart), 8u);
  EXPECT_EQ(counts->by_type.at(EventType::kPurchase), 19u);
}

TEST(RealDataTest, VideoPairsBecomeOneViewPerLine) {
  const auto counts = ReadSlice("amazon-sequences/Video.txt", InputFormat::kSequence);
  SKIP_IF_ABSENT(counts, "amazon-sequences/Video.txt");
  EXPECT_EQ(counts->events, 2000u);
  EXPECT_EQ(counts->issues, 0u);
  EXPECT_EQ(counts->by_type.at(EventType::kView), 2000u);
}

TEST(RealDataTest, ToysSequencesBecomeOneViewPerItem) {
  const auto counts = ReadSlice("amazon-sequences/Toys_and_Games.txt", InputFormat::kSequence);
  SKIP_IF_ABSENT(counts, "amazon-sequences/Toys_and_Games.txt");
  EXPECT_EQ(counts->events, 25147u);  // 2,000 users' whole sequences
  EXPECT_EQ(counts->issues, 0u);
}

TEST(RealDataTest, SequenceTimesIncreaseStrictlyPerUser) {
  const std::string path = std::string(PERSONA_DATASETS) + "/amazon-sequences/Video.txt";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent";
  std::ifstream in(path);
  std::string head, line;
  for (int i = 0; i < 2000 && std::getline(in, line); ++i) head += line + "\n";
  auto reader = EventReader::OpenText(head, InputFormat::kSequence, ValidationLimits());
  ASSERT_TRUE(reader.ok());
  std::map<std::string, int64_t> last_ts;
  EventBatch batch;
  std::vector<EventIssue> issues;
  const int64_t base = *ParseIsoTime("2020-01-01T00:00:00Z");
  while ((*reader)->Next(512, &batch, &issues)) {
    for (const Event& e : batch.events) {
      auto [it, inserted] = last_ts.emplace(std::string(e.user_id), e.ts_ms);
      if (inserted) {
        EXPECT_EQ(e.ts_ms, base);
      } else {
        EXPECT_EQ(e.ts_ms, it->second + kHourMs);
        it->second = e.ts_ms;
      }
    }
  }
  EXPECT_EQ(last_ts.size(), 125u);
}

}  // namespace
}  // namespace persona
