#include "engine/testing/engine_test_util.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "event/event_reader.h"

namespace persona::testing_util {

TempDir::TempDir(const std::string& name) {
  static int counter = 0;
  path_ = ::testing::TempDir() + "persona_" + name + "_" + std::to_string(getpid()) + "_" +
          std::to_string(counter++);
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}
TempDir::~TempDir() { std::filesystem::remove_all(path_); }

std::shared_ptr<EventBatch> BatchFromJson(const std::string& ndjson) {
  auto batch = std::make_shared<EventBatch>();
  std::vector<EventIssue> issues;
  absl::Status st = ParseJsonBody(ndjson, ValidationLimits{}, false, batch.get(), &issues);
  if (!st.ok()) ADD_FAILURE() << st;
  for (const auto& is : issues)
    ADD_FAILURE() << "record " << is.index_or_line << ": " << is.field << " " << is.rule;
  return batch;
}

std::shared_ptr<EventBatch> ReadTaobao(const std::string& path, size_t max_lines) {
  auto reader = EventReader::Open(path, InputFormat::kTaobao, ValidationLimits{});
  if (!reader.ok()) return nullptr;
  auto all = std::make_shared<EventBatch>();
  std::vector<EventIssue> issues;
  (*reader)->Next(max_lines, all.get(), &issues);
  return all;
}

std::shared_ptr<EventBatch> Slice(const std::shared_ptr<EventBatch>& src, size_t begin, size_t end,
                                  const std::vector<size_t>* order) {
  auto out = std::make_shared<EventBatch>();
  // Keep the source alive: its arena and input hold the bytes our views point into.
  struct Holder {
    std::shared_ptr<EventBatch> src;
    std::string empty;
  };
  auto holder = std::make_shared<Holder>(Holder{src, {}});
  out->input = std::shared_ptr<const std::string>(holder, &holder->empty);
  out->price_optional = src->price_optional;
  for (size_t i = begin; i < end; ++i) {
    const size_t j = order ? (*order)[i] : i;
    out->events.push_back(src->events[j]);
    out->source_index.push_back(src->source_index.empty() ? j : src->source_index[j]);
  }
  return out;
}

namespace {
std::string Diff(simdjson::dom::element a, simdjson::dom::element b, const std::string& path,
                 double tol) {
  using simdjson::dom::element_type;
  auto ta = a.type(), tb = b.type();
  auto is_num = [](element_type t) {
    return t == element_type::DOUBLE || t == element_type::INT64 || t == element_type::UINT64;
  };
  if (is_num(ta) && is_num(tb)) {
    double x = double(a.get_double().value_unsafe()), y = double(b.get_double().value_unsafe());
    if (ta != element_type::DOUBLE)
      x = ta == element_type::INT64 ? double(int64_t(a)) : double(uint64_t(a));
    if (tb != element_type::DOUBLE)
      y = tb == element_type::INT64 ? double(int64_t(b)) : double(uint64_t(b));
    if (std::fabs(x - y) <= tol * std::max({1.0, std::fabs(x), std::fabs(y)})) return "";
    return path + ": " + std::to_string(x) + " != " + std::to_string(y);
  }
  if (ta != tb) return path + ": type differs";
  switch (ta) {
    case element_type::OBJECT: {
      auto oa = a.get_object().value_unsafe(), ob = b.get_object().value_unsafe();
      if (oa.size() != ob.size()) return path + ": object size differs";
      for (auto [k, v] : oa) {
        auto other = ob[k];
        if (other.error()) return path + "." + std::string(k) + ": missing";
        std::string d = Diff(v, other.value_unsafe(), path + "." + std::string(k), tol);
        if (!d.empty()) return d;
      }
      return "";
    }
    case element_type::ARRAY: {
      auto aa = a.get_array().value_unsafe(), ab = b.get_array().value_unsafe();
      if (aa.size() != ab.size()) return path + ": array size differs";
      size_t i = 0;
      auto it = ab.begin();
      for (auto v : aa) {
        std::string d = Diff(v, *it, path + "[" + std::to_string(i) + "]", tol);
        if (!d.empty()) return d;
        ++it;
        ++i;
      }
      return "";
    }
    case element_type::STRING:
      return std::string_view(a) == std::string_view(b)
                 ? ""
                 : path + ": '" + std::string(std::string_view(a)) + "' != '" +
                       std::string(std::string_view(b)) + "'";
    case element_type::BOOL:
      return bool(a) == bool(b) ? "" : path + ": bool differs";
    default:
      return "";
  }
}
}  // namespace

std::string JsonDiff(const std::string& a, const std::string& b, double tolerance) {
  simdjson::dom::parser pa, pb;
  auto ea = pa.parse(a), eb = pb.parse(b);
  if (ea.error() || eb.error()) return "unparsable JSON";
  return Diff(ea.value_unsafe(), eb.value_unsafe(), "$", tolerance);
}

std::vector<std::string> AllUsers(const Engine& engine) {
  std::vector<std::string> users;
  engine.ForEachUser([&](std::string_view u) { users.emplace_back(u); });
  std::sort(users.begin(), users.end());
  return users;
}

}  // namespace persona::testing_util
