#include "request_source.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <iterator>

namespace persona::loadgen {
namespace {

void AppendNumber(uint64_t v, std::string* out) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

void AppendSignedNumber(int64_t v, std::string* out) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

void AppendPercentEncoded(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (IsUnreserved(c)) {
      out->push_back(static_cast<char>(c));
    } else {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    }
  }
}

// Ids from a users file go into JSON strings; escape what JSON requires.
void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

constexpr std::string_view kCategories[] = {"electronics.audio.headphones",
                                            "electronics.phones",
                                            "home.kitchen.cookware",
                                            "fashion.shoes.sneakers",
                                            "fashion.bags",
                                            "sports.outdoor.camping",
                                            "books.fiction",
                                            "beauty.skincare"};

}  // namespace

uint64_t CountBodyEvents(std::string_view body) {
  size_t i = 0;
  while (i < body.size() &&
         (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t')) {
    ++i;
  }
  if (i == body.size()) return 0;
  if (body[i] == '[') {
    // Top-level elements of the array: count objects opened at depth 1, skipping strings.
    uint64_t count = 0;
    int depth = 0;
    bool in_string = false;
    for (; i < body.size(); ++i) {
      const char c = body[i];
      if (in_string) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_string = false;
        }
        continue;
      }
      if (c == '"') {
        in_string = true;
      } else if (c == '[' || c == '{') {
        if (depth == 1 && c == '{') ++count;
        ++depth;
      } else if (c == ']' || c == '}') {
        --depth;
      }
    }
    return count;
  }
  // NDJSON, or one (possibly pretty-printed) object: lines that open an object at column 0.
  uint64_t count = 0;
  bool line_start = true;
  for (char c : body) {
    if (line_start && c == '{') ++count;
    line_start = c == '\n';
  }
  return count == 0 ? 1 : count;
}

RequestSource::RequestSource(const RequestSettings& settings,
                             std::vector<RequestTemplate> templates, uint32_t thread_index,
                             uint64_t seed)
    : settings_(settings),
      templates_(std::move(templates)),
      thread_index_(thread_index),
      rng_(seed | 1) {
  for (const RequestTemplate& t : templates_) total_weight_ += t.weight;
}

uint64_t RequestSource::Random() {
  // xorshift64*: plenty for picking users and event types.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 2685821657736338717ULL;
}

std::string_view RequestSource::PickUser(std::string* scratch) {
  if (settings_.users && !settings_.users->empty()) {
    const auto& users = *settings_.users;
    return users[Random() % users.size()];
  }
  scratch->assign("u");
  AppendNumber(Random() % std::max<uint64_t>(settings_.user_count, 1), scratch);
  return *scratch;
}

void RequestSource::AppendPath(const std::string& path, std::string* out) {
  static constexpr std::string_view kUser = "{user}";
  size_t pos = 0;
  std::string scratch;
  while (true) {
    const size_t hit = path.find(kUser, pos);
    if (hit == std::string::npos) {
      out->append(path, pos, std::string::npos);
      return;
    }
    out->append(path, pos, hit - pos);
    AppendPercentEncoded(PickUser(&scratch), out);
    pos = hit + kUser.size();
  }
}

void RequestSource::AppendGeneratedEvents(uint32_t count, std::string* out) {
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  std::string user_scratch;
  out->push_back('[');
  for (uint32_t i = 0; i < count; ++i) {
    if (i > 0) out->push_back(',');
    const uint64_t roll = Random() % 100;
    const std::string_view type = roll < 80 ? "view" : roll < 95 ? "cart" : "purchase";
    const uint64_t item = Random() % 100000;
    // Event times trail the wall clock by at most `count` ms and never go backwards per thread.
    int64_t ts = now_ms - static_cast<int64_t>(count - 1 - i);
    if (ts < last_ts_ms_) ts = last_ts_ms_;
    last_ts_ms_ = ts;
    out->append("{\"event_id\":\"lg-");
    AppendNumber(settings_.run_id, out);
    out->push_back('-');
    AppendNumber(thread_index_, out);
    out->push_back('-');
    AppendNumber(next_event_++, out);
    out->append("\",\"user_id\":");
    AppendJsonString(PickUser(&user_scratch), out);
    out->append(",\"type\":\"");
    out->append(type);
    out->append("\",\"ts\":");
    AppendSignedNumber(ts, out);
    out->append(",\"item_id\":\"i");
    AppendNumber(item, out);
    out->append("\",\"category_path\":\"");
    out->append(kCategories[item % std::size(kCategories)]);
    out->push_back('"');
    if (type == "purchase") {
      out->append(",\"price\":");
      AppendNumber(5 + item % 500, out);
      out->append(".99,\"quantity\":1,\"order_id\":\"o");
      AppendNumber(settings_.run_id % 100000, out);
      out->push_back('-');
      AppendNumber(next_event_, out);
      out->push_back('"');
    }
    out->push_back('}');
  }
  out->push_back(']');
}

size_t RequestSource::Next(std::string* out, uint64_t* events) {
  size_t index = 0;
  if (templates_.size() > 1) {
    uint64_t pick = Random() % total_weight_;
    while (pick >= templates_[index].weight) pick -= templates_[index++].weight;
  }
  const RequestTemplate& t = templates_[index];
  out->append(t.method);
  out->push_back(' ');
  AppendPath(t.path, out);
  out->append(" HTTP/1.1\r\nHost: ");
  out->append(settings_.host_header);
  out->append("\r\n");
  for (const std::string& h : settings_.extra_headers) {
    out->append(h);
    out->append("\r\n");
  }
  const std::string* body = &t.body;
  *events = t.body_events;
  if (t.gen_events > 0) {
    body_.clear();
    AppendGeneratedEvents(t.gen_events, &body_);
    body = &body_;
    *events = t.gen_events;
  }
  if (!body->empty() || t.method == "POST" || t.method == "PUT") {
    if (!t.content_type.empty()) {
      out->append("Content-Type: ");
      out->append(t.content_type);
      out->append("\r\n");
    }
    out->append("Content-Length: ");
    AppendNumber(body->size(), out);
    out->append("\r\n\r\n");
    out->append(*body);
  } else {
    out->append("\r\n");
  }
  return index;
}

}  // namespace persona::loadgen
