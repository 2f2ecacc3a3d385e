#include "gen/event_text.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "common/csv_field.h"
#include "common/json_writer.h"

namespace persona::gen {
namespace {

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

// Shortest round-trip text: cents / 100.0 prints with at most two decimals.
void AppendDouble(double v, std::string* out) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

class JsonFields {
 public:
  explicit JsonFields(std::string* out) : out_(out) { out_->push_back('{'); }
  void String(std::string_view key, std::string_view value) {
    if (value.empty()) return;
    Key(key, /*open_string=*/true);
    if (NeedsEscaping(value)) {
      JsonWriter::AppendEscaped(*out_, value);
    } else {
      out_->append(value);  // the common case, without a per-byte loop
    }
    out_->push_back('"');
  }
  void Int(std::string_view key, int64_t value) {
    Key(key);
    AppendInt(value, out_);
  }
  void Double(std::string_view key, double value) {
    Key(key);
    if (std::isfinite(value)) {
      AppendDouble(value, out_);
    } else {
      out_->append("null");  // JSON has no NaN or infinity
    }
  }
  void Raw(std::string_view key, std::string_view json) {
    if (json.empty()) return;
    Key(key);
    out_->append(json);
  }
  void End() { out_->append("}\n"); }

 private:
  // Keys are short literals: assemble `,"key":` (and the value's opening quote) in one append.
  void Key(std::string_view key, bool open_string = false) {
    char buf[48];
    size_t n = 0;
    if (!first_) buf[n++] = ',';
    first_ = false;
    buf[n++] = '"';
    std::memcpy(buf + n, key.data(), key.size());
    n += key.size();
    buf[n++] = '"';
    buf[n++] = ':';
    if (open_string) buf[n++] = '"';
    out_->append(buf, n);
  }
  static bool NeedsEscaping(std::string_view s) {
    for (unsigned char c : s) {
      if (c < 0x20 || c == '"' || c == '\\') return true;
    }
    return false;
  }
  std::string* out_;
  bool first_ = true;
};


}  // namespace

void AppendJsonLine(const Event& e, std::string* out) {
  JsonFields f(out);
  f.String("event_id", e.event_id);
  f.String("user_id", e.user_id);
  f.String("type", EventTypeName(e.type));
  f.Int("ts", e.ts_ms);
  f.String("item_id", e.item_id);
  f.String("category_id", e.category_id);
  f.String("category_path", e.category_path);
  f.String("brand", e.brand);
  if (e.has_price()) f.Double("price", e.price);
  if (e.quantity != 0) f.Int("quantity", e.quantity);
  f.String("order_id", e.order_id);
  f.String("query", e.query);
  if (e.rating != 0) f.Int("rating", e.rating);
  f.String("text", e.text);
  f.String("session_id", e.session_id);
  f.String("device", e.device);
  f.String("rec_id", e.rec_id);
  f.Raw("attrs", e.attrs_json);
  f.End();
}

std::string_view CsvHeader() {
  return "event_id,user_id,type,ts,item_id,category_path,brand,price,quantity,order_id,query,"
         "rating,text,session_id,device\n";
}

void AppendCsvLine(const Event& e, std::string* out) {
  AppendCsvField(e.event_id, out);
  out->push_back(',');
  AppendCsvField(e.user_id, out);
  out->push_back(',');
  out->append(EventTypeName(e.type));
  out->push_back(',');
  AppendInt(e.ts_ms, out);
  out->push_back(',');
  AppendCsvField(e.item_id, out);
  out->push_back(',');
  AppendCsvField(e.category_path, out);
  out->push_back(',');
  AppendCsvField(e.brand, out);
  out->push_back(',');
  if (e.has_price() && std::isfinite(e.price)) AppendDouble(e.price, out);
  out->push_back(',');
  if (e.quantity != 0) AppendInt(e.quantity, out);
  out->push_back(',');
  AppendCsvField(e.order_id, out);
  out->push_back(',');
  AppendCsvField(e.query, out);
  out->push_back(',');
  if (e.rating != 0) AppendInt(e.rating, out);
  out->push_back(',');
  AppendCsvField(e.text, out);
  out->push_back(',');
  AppendCsvField(e.session_id, out);
  out->push_back(',');
  AppendCsvField(e.device, out);
  out->push_back('\n');
}

}  // namespace persona::gen
