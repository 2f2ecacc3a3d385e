// Throughput of the event stage's hot paths on synthetic in-memory data: taobao lines through the
// reader and through the bare line decoder, native JSON objects, and the log codec.
// Targets (Release, one core): taobao >= 5M lines/s, JSON >= 1.5M events/s.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "event/csv_formats.h"
#include "event/event_codec.h"
#include "event/event_reader.h"
#include "event/json_event.h"

namespace persona {
namespace {

// Lines shaped like UserBehavior.csv: 1..7-digit ids, pv-heavy behaviour mix, Nov 2017 seconds.
std::string SyntheticTaobao(int lines) {
  std::mt19937_64 rng(42);
  const char* behaviours[] = {"pv", "pv", "pv", "pv", "pv", "pv", "pv", "pv", "cart", "fav", "buy"};
  std::string text;
  text.reserve(lines * 40);
  for (int i = 0; i < lines; ++i) {
    text += std::to_string(rng() % 1000000) + "," + std::to_string(rng() % 5000000) + "," +
            std::to_string(rng() % 5000000) + "," + behaviours[rng() % 11] + "," +
            std::to_string(1511539200 + rng() % 777600) + "\n";
  }
  return text;
}

std::vector<std::string> SyntheticJsonObjects(int count) {
  std::mt19937_64 rng(7);
  std::vector<std::string> objects;
  for (int i = 0; i < count; ++i) {
    std::string json = "{\"user_id\":\"u" + std::to_string(rng() % 100000) + "\",\"type\":\"" +
                       (i % 10 == 0 ? "purchase" : "view") +
                       "\",\"ts\":" + std::to_string(1569888000000 + i) + ",\"item_id\":\"i" +
                       std::to_string(rng() % 1000000) +
                       "\",\"category_path\":\"electronics.audio.headphones\",\"price\":" +
                       std::to_string(rng() % 10000 / 100.0) + ",\"session_id\":\"s" +
                       std::to_string(rng() % 1000000) + "\"}";
    objects.push_back(std::move(json));
  }
  return objects;
}

void BM_TaobaoReader(benchmark::State& state) {
  const int kLines = 200000;
  const std::string text = SyntheticTaobao(kLines);
  for (auto _ : state) {
    auto reader = EventReader::OpenText(text, InputFormat::kTaobao, ValidationLimits());
    EventBatch batch;
    std::vector<EventIssue> issues;
    size_t events = 0;
    while ((*reader)->Next(4096, &batch, &issues)) events += batch.events.size();
    if (events != kLines) state.SkipWithError("lost events");
  }
  state.SetItemsProcessed(state.iterations() * kLines);
  state.SetBytesProcessed(state.iterations() * text.size());
}
BENCHMARK(BM_TaobaoReader)->Unit(benchmark::kMillisecond);

void BM_TaobaoLineDecoder(benchmark::State& state) {
  const std::string text = SyntheticTaobao(10000);
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos < text.size();) {
    const size_t nl = text.find('\n', pos);
    lines.push_back(std::string_view(text).substr(pos, nl - pos));
    pos = nl + 1;
  }
  LineDecoder decoder(InputFormat::kTaobao, ValidationLimits());
  std::vector<EventIssue> issues;
  EventBatch batch;
  batch.price_optional = true;
  batch.events.reserve(lines.size());
  for (auto _ : state) {
    batch.events.clear();
    batch.source_index.clear();
    for (size_t i = 0; i < lines.size(); ++i) decoder.DecodeLine(lines[i], i + 1, &batch, &issues);
    benchmark::DoNotOptimize(batch.events.data());
  }
  state.SetItemsProcessed(state.iterations() * lines.size());
}
BENCHMARK(BM_TaobaoLineDecoder);

void BM_JsonEventParse(benchmark::State& state) {
  const std::vector<std::string> objects = SyntheticJsonObjects(1000);
  size_t bytes = 0;
  for (const auto& o : objects) bytes += o.size();
  JsonEventParser parser;
  for (auto _ : state) {
    EventBatch batch;  // fresh arena per round keeps memory flat
    Event e;
    for (const std::string& json : objects) {
      if (parser.ParseEvent(json, &batch, &e)) state.SkipWithError("rejected");
      benchmark::DoNotOptimize(e.id_hash);
    }
  }
  state.SetItemsProcessed(state.iterations() * objects.size());
  state.SetBytesProcessed(state.iterations() * bytes);
}
BENCHMARK(BM_JsonEventParse);

void BM_JsonNdjsonBody(benchmark::State& state) {
  std::string body;
  for (const std::string& json : SyntheticJsonObjects(1000)) body += json + "\n";
  JsonEventParser parser;
  for (auto _ : state) {
    EventBatch batch;
    std::vector<EventIssue> issues;
    if (!parser.ParseBody(body, &batch, &issues).ok()) state.SkipWithError("bad body");
    benchmark::DoNotOptimize(batch.events.data());
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_JsonNdjsonBody);

std::vector<Event> SyntheticEvents(EventBatch* batch) {
  JsonEventParser parser;
  std::vector<Event> events;
  for (const std::string& json : SyntheticJsonObjects(1000)) {
    Event e;
    if (!parser.ParseEvent(json, batch, &e)) events.push_back(e);
  }
  return events;
}

void BM_CodecEncode(benchmark::State& state) {
  EventBatch batch;
  const std::vector<Event> events = SyntheticEvents(&batch);
  std::string log;
  for (auto _ : state) {
    log.clear();
    for (const Event& e : events) AppendEventRecord(e, &log);
    benchmark::DoNotOptimize(log.data());
  }
  state.SetItemsProcessed(state.iterations() * events.size());
  state.SetBytesProcessed(state.iterations() * log.size());
}
BENCHMARK(BM_CodecEncode);

void BM_CodecDecode(benchmark::State& state) {
  EventBatch batch;
  const std::vector<Event> events = SyntheticEvents(&batch);
  std::string log;
  for (const Event& e : events) AppendEventRecord(e, &log);
  for (auto _ : state) {
    std::string_view in = log;
    Event e;
    size_t n = 0;
    while (ReadEventRecord(&in, &e)) ++n;
    if (n != events.size()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(e.id_hash);
  }
  state.SetItemsProcessed(state.iterations() * events.size());
  state.SetBytesProcessed(state.iterations() * log.size());
}
BENCHMARK(BM_CodecDecode);

}  // namespace
}  // namespace persona

// main() comes from benchmark::benchmark_main, linked by CMakeLists.txt.
