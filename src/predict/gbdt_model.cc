#include "predict/gbdt_model.h"

#include <simdjson.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/model_artifact.h"

namespace persona {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the artifact stores little-endian integers and floats as raw bytes");

// ---------------------------------------------------------------------------------------------
// XGBoost JSON import.

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("XGBoost model JSON: ", what));
}

// XGBoost writes its scalar parameters as JSON strings ("5E-1", "30").
absl::StatusOr<double> NumberInString(simdjson::dom::element obj, const char* key) {
  std::string_view s;
  if (obj[key].get_string().get(s)) return Bad(absl::StrCat("no string field ", key));
  const std::string copy(s);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size() || errno != 0) {
    return Bad(absl::StrCat(key, " is not a number: '", copy, "'"));
  }
  return v;
}

template <typename T>
absl::Status ReadArray(simdjson::dom::element tree, const char* key, size_t expected,
                       std::vector<T>* out) {
  simdjson::dom::array arr;
  if (tree[key].get_array().get(arr)) return Bad(absl::StrCat("tree has no array ", key));
  out->clear();
  out->reserve(expected);
  for (simdjson::dom::element v : arr) {
    if constexpr (std::is_floating_point_v<T>) {
      double d;
      if (v.get_double().get(d)) return Bad(absl::StrCat(key, " holds a non-number"));
      out->push_back(static_cast<T>(d));
    } else {
      int64_t i;
      if (v.get_int64().get(i)) {
        // default_left is an array of 0/1 in 1.7's JSON but booleans in some writers.
        bool b;
        if (v.get_bool().get(b)) return Bad(absl::StrCat(key, " holds a non-integer"));
        i = b ? 1 : 0;
      }
      out->push_back(static_cast<T>(i));
    }
  }
  if (out->size() != expected) {
    return Bad(absl::StrCat(key, " has ", out->size(), " entries, tree has ", expected, " nodes"));
  }
  return absl::OkStatus();
}

// One tree as XGBoost lays it out: parallel arrays indexed by XGBoost's node id.
struct XgbTree {
  std::vector<int64_t> left, right, split_index, default_left, split_type;
  std::vector<float> split_condition;
};

absl::StatusOr<XgbTree> ParseTree(simdjson::dom::element tree, size_t t, uint32_t num_features) {
  simdjson::dom::element param;
  if (tree["tree_param"].get(param)) return Bad(absl::StrCat("tree ", t, " has no tree_param"));
  auto num_nodes = NumberInString(param, "num_nodes");
  if (!num_nodes.ok()) return num_nodes.status();
  if (*num_nodes < 1 || *num_nodes > (1 << 26)) {
    return Bad(absl::StrCat("tree ", t, " has ", *num_nodes, " nodes"));
  }
  const size_t n = static_cast<size_t>(*num_nodes);
  XgbTree x;
  for (auto [key, dest] : {std::pair{"left_children", &x.left},
                           {"right_children", &x.right},
                           {"split_indices", &x.split_index},
                           {"default_left", &x.default_left}}) {
    if (auto s = ReadArray(tree, key, n, dest); !s.ok()) return s;
  }
  if (auto s = ReadArray(tree, "split_conditions", n, &x.split_condition); !s.ok()) return s;
  if (tree["split_type"].error() == simdjson::SUCCESS) {
    if (auto s = ReadArray(tree, "split_type", n, &x.split_type); !s.ok()) return s;
    for (int64_t type : x.split_type) {
      if (type != 0) return Bad(absl::StrCat("tree ", t, " has a categorical split"));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const bool leaf = x.left[i] == -1;
    if (leaf != (x.right[i] == -1)) {
      return Bad(absl::StrCat("tree ", t, " node ", i, " has exactly one child"));
    }
    if (!leaf) {
      if (x.left[i] < 0 || x.right[i] < 0 || static_cast<size_t>(x.left[i]) >= n ||
          static_cast<size_t>(x.right[i]) >= n) {
        return Bad(absl::StrCat("tree ", t, " node ", i, " has a child outside the tree"));
      }
      if (x.split_index[i] < 0 || x.split_index[i] >= num_features) {
        return Bad(absl::StrCat("tree ", t, " node ", i, " splits on feature ", x.split_index[i],
                                " of ", num_features));
      }
    }
    if (!std::isfinite(x.split_condition[i])) {
      return Bad(absl::StrCat("tree ", t, " node ", i, " has a non-finite value"));
    }
  }
  return x;
}

// Appends the nodes reachable from XGBoost's root 0 to `out` in pre-order, so that children
// always follow their parent. Deleted (pruned) nodes are unreachable and left out; a node reached
// twice means the links are not a tree.
absl::Status AppendTree(const XgbTree& x, size_t t, std::vector<GbdtModel::Node>* out) {
  std::vector<uint8_t> seen(x.left.size(), 0);
  // (xgboost id, index in `out` of the parent's link to fill, is_left)
  struct Pending {
    int64_t id;
    size_t parent;
    bool left;
  };
  std::vector<Pending> stack = {{0, SIZE_MAX, false}};
  while (!stack.empty()) {
    const Pending p = stack.back();
    stack.pop_back();
    if (seen[p.id]) return Bad(absl::StrCat("tree ", t, " reaches node ", p.id, " twice"));
    seen[p.id] = 1;
    const uint32_t here = static_cast<uint32_t>(out->size());
    if (p.parent != SIZE_MAX) {
      GbdtModel::Node& parent = (*out)[p.parent];
      (p.left ? parent.left : parent.right) = here;
    }
    GbdtModel::Node node;
    node.value = x.split_condition[p.id];
    if (x.left[p.id] != -1) {
      node.feature = static_cast<uint32_t>(x.split_index[p.id]);
      node.default_left = x.default_left[p.id] != 0;
      // Right first so that the left child is popped next and lands at here + 1.
      stack.push_back({x.right[p.id], here, false});
      stack.push_back({x.left[p.id], here, true});
    }
    out->push_back(node);
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Payload encoding (docs/model_format.md), kind "gbdt"; model_artifact.h wraps it in the
// envelope.

constexpr std::string_view kKindGbdt = "gbdt";
constexpr uint32_t kGbdtLayoutVersion = 1;
constexpr size_t kNodeBytes = 20;

void PutU32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }
void PutU64(std::string* out, uint64_t v) { out->append(reinterpret_cast<const char*>(&v), 8); }
void PutF64(std::string* out, double v) { PutU64(out, std::bit_cast<uint64_t>(v)); }
void PutString(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Bounds-checked reader over the payload; every failure names what it was reading.
class PayloadReader {
 public:
  explicit PayloadReader(std::string_view bytes) : rest_(bytes) {}

  absl::Status Bytes(absl::string_view what, size_t n, void* dest) {
    if (rest_.size() < n) {
      return absl::DataLossError(absl::StrCat("model payload ends inside ", what));
    }
    std::memcpy(dest, rest_.data(), n);
    rest_.remove_prefix(n);
    return absl::OkStatus();
  }
  absl::Status U32(absl::string_view what, uint32_t* v) { return Bytes(what, 4, v); }
  absl::Status I64(absl::string_view what, int64_t* v) { return Bytes(what, 8, v); }
  absl::Status F64(absl::string_view what, double* v) { return Bytes(what, 8, v); }
  absl::Status String(absl::string_view what, std::string* s) {
    uint32_t len = 0;
    if (auto st = U32(what, &len); !st.ok()) return st;
    if (rest_.size() < len) {
      return absl::DataLossError(absl::StrCat("model payload ends inside ", what));
    }
    s->assign(rest_.data(), len);
    rest_.remove_prefix(len);
    return absl::OkStatus();
  }
  // A count of records of at least `min_record_bytes` each, refused before anything is
  // allocated for it when the payload cannot hold that many.
  absl::Status Count(absl::string_view what, size_t min_record_bytes, uint32_t* n) {
    if (auto st = U32(what, n); !st.ok()) return st;
    if (*n > rest_.size() / min_record_bytes) {
      return absl::DataLossError(absl::StrCat(what, " (", *n, ") exceeds the payload"));
    }
    return absl::OkStatus();
  }
  size_t remaining() const { return rest_.size(); }

 private:
  std::string_view rest_;
};

absl::Status ReadNamedValues(PayloadReader& in, absl::string_view what,
                             std::vector<std::pair<std::string, double>>* out) {
  uint32_t n = 0;
  if (auto s = in.Count(what, 12, &n); !s.ok()) return s;
  out->resize(n);
  for (auto& [name, value] : *out) {
    if (auto s = in.String(what, &name); !s.ok()) return s;
    if (auto s = in.F64(what, &value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GbdtModel> GbdtModel::FromXgboostJson(std::string_view json) {
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(json);
  simdjson::dom::element doc;
  if (auto err = parser.parse(padded).get(doc); err) {
    return Bad(absl::StrCat("not JSON (", simdjson::error_message(err), ")"));
  }
  simdjson::dom::element learner, booster, model, param;
  if (doc["learner"].get(learner)) return Bad("no learner object");
  std::string_view objective, booster_name;
  if (learner["objective"]["name"].get_string().get(objective)) return Bad("no objective name");
  if (objective != "binary:logistic") {
    return Bad(
        absl::StrCat("objective is ", std::string(objective), ", only binary:logistic is served"));
  }
  if (learner["gradient_booster"].get(booster)) return Bad("no gradient_booster");
  if (booster["name"].get_string().get(booster_name) || booster_name != "gbtree") {
    return Bad(absl::StrCat("booster is '", std::string(booster_name), "', only gbtree is served"));
  }
  if (learner["learner_model_param"].get(param)) return Bad("no learner_model_param");
  auto base_score = NumberInString(param, "base_score");
  if (!base_score.ok()) return base_score.status();
  if (!(*base_score > 0 && *base_score < 1)) {
    return Bad(absl::StrCat("base_score ", *base_score, " is not a probability"));
  }
  auto num_feature = NumberInString(param, "num_feature");
  if (!num_feature.ok()) return num_feature.status();
  if (*num_feature < 1 || *num_feature > 1e6) {
    return Bad(absl::StrCat("num_feature is ", *num_feature));
  }
  if (auto num_class = NumberInString(param, "num_class"); num_class.ok() && *num_class > 1) {
    return Bad("multi-class models are not served");
  }

  GbdtModel m;
  m.num_features_ = static_cast<uint32_t>(*num_feature);
  // XGBoost's ProbToMargin for binary:logistic, computed in float as XGBoost does.
  const float p = static_cast<float>(*base_score);
  m.base_margin_ = -std::log(1.0f / p - 1.0f);

  simdjson::dom::array names;
  if (!learner["feature_names"].get_array().get(names)) {
    for (simdjson::dom::element v : names) {
      std::string_view s;
      if (v.get_string().get(s)) return Bad("feature_names holds a non-string");
      m.meta_.feature_names.emplace_back(s);
    }
  }
  if (m.meta_.feature_names.empty()) {
    for (uint32_t i = 0; i < m.num_features_; ++i) {
      m.meta_.feature_names.push_back(absl::StrCat("f", i));
    }
  } else if (m.meta_.feature_names.size() != m.num_features_) {
    return Bad(absl::StrCat(m.meta_.feature_names.size(), " feature names for ", m.num_features_,
                            " features"));
  }

  if (booster["model"].get(model)) return Bad("no gradient_booster.model");
  simdjson::dom::array trees, tree_info;
  if (model["trees"].get_array().get(trees)) return Bad("no trees array");
  if (!model["tree_info"].get_array().get(tree_info)) {
    for (simdjson::dom::element g : tree_info) {
      int64_t group;
      if (g.get_int64().get(group) || group != 0) return Bad("tree_info names a second group");
    }
  }
  size_t t = 0;
  for (simdjson::dom::element tree : trees) {
    auto parsed = ParseTree(tree, t, m.num_features_);
    if (!parsed.ok()) return parsed.status();
    m.roots_.push_back(static_cast<uint32_t>(m.nodes_.size()));
    if (auto s = AppendTree(*parsed, t, &m.nodes_); !s.ok()) return s;
    ++t;
  }
  m.BuildWalk();
  return m;
}

void GbdtModel::BuildWalk() {
  walk_.resize(nodes_.size());
  leaf_value_.assign(nodes_.size(), 0.0f);
  std::vector<uint32_t> depth(nodes_.size(), 0);
  std::vector<uint32_t> tree_depth(roots_.size(), 0);
  for (size_t t = 0; t < roots_.size(); ++t) {
    const uint32_t end = t + 1 < roots_.size() ? roots_[t + 1] : nodes_.size();
    for (uint32_t i = roots_[t]; i < end; ++i) {
      const Node& n = nodes_[i];
      if (n.feature == Node::kLeaf) {
        walk_[i] = {0, -std::numeric_limits<float>::infinity(), i, i};
        leaf_value_[i] = n.value;
        tree_depth[t] = std::max(tree_depth[t], depth[i]);
      } else {
        walk_[i] = {n.feature | (n.default_left ? 0x80000000u : 0u), n.value, n.left, n.right};
        // Children follow their parent (checked on import and load), so depth[i] is final here.
        depth[n.left] = depth[n.right] = depth[i] + 1;
      }
    }
  }
  lane_depth_.clear();
  for (size_t g = 0; g < roots_.size(); g += kWalkLanes) {
    uint32_t d = 0;
    for (size_t t = g; t < std::min(roots_.size(), g + kWalkLanes); ++t) {
      d = std::max(d, tree_depth[t]);
    }
    lane_depth_.push_back(d);
  }
}

double GbdtModel::Margin(std::span<const float> x) const {
  if (x.size() < num_features_) {
    // A shorter vector (an older feature set) must not be read past its end: the columns it
    // lacks are missing values.
    std::vector<float> padded(x.begin(), x.end());
    padded.resize(num_features_, std::numeric_limits<float>::quiet_NaN());
    return Margin(padded);
  }
  // Float accumulation in tree order, starting from the float base margin: the same sum
  // XGBoost's CPU predictor computes, so the two agree to float rounding of the same terms.
  float margin = static_cast<float>(base_margin_);
  const WalkNode* walk = walk_.data();
  const float* xs = x.data();
  const size_t trees = roots_.size();
  for (size_t g = 0, group = 0; g < trees; g += kWalkLanes, ++group) {
    const size_t lanes = std::min(kWalkLanes, trees - g);
    uint32_t at[kWalkLanes];
    for (size_t k = 0; k < lanes; ++k) at[k] = roots_[g + k];
    for (uint32_t step = 0; step < lane_depth_[group]; ++step) {
      for (size_t k = 0; k < lanes; ++k) {
        const WalkNode& n = walk[at[k]];
        const float v = xs[n.feature_and_default & 0x7fffffffu];
        // NaN compares false, so it goes left only when the node's default is left.
        const bool left =
            (v < n.threshold) | (std::isnan(v) & ((n.feature_and_default >> 31) != 0));
        // A select by mask: g++ turns `left ? n.left : n.right` into a branch here, and that
        // branch is as unpredictable as the data.
        at[k] = n.right ^ ((n.left ^ n.right) & (0u - static_cast<uint32_t>(left)));
      }
    }
    for (size_t k = 0; k < lanes; ++k) margin += leaf_value_[at[k]];
  }
  return margin;
}

double GbdtModel::Calibrate(double margin) const {
  return 1.0 / (1.0 + std::exp(-(meta_.platt_a * margin + meta_.platt_b)));
}

double GbdtModel::Probability(std::span<const float> x) const { return Calibrate(Margin(x)); }

absl::Status GbdtModel::Save(const std::string& path) const {
  if (meta_.feature_names.size() != num_features_) {
    return absl::InvalidArgumentError(absl::StrCat("model has ", meta_.feature_names.size(),
                                                   " feature names for ", num_features_,
                                                   " features"));
  }
  std::string payload;
  payload.reserve(nodes_.size() * kNodeBytes + roots_.size() * 4 + 4096);
  PutString(&payload, kKindGbdt);
  PutU32(&payload, kGbdtLayoutVersion);
  PutString(&payload, meta_.name);
  PutString(&payload, meta_.version);
  PutU64(&payload, static_cast<uint64_t>(meta_.horizon_ms));
  PutU64(&payload, static_cast<uint64_t>(meta_.trained_at_ms));
  PutF64(&payload, meta_.platt_a);
  PutF64(&payload, meta_.platt_b);
  PutF64(&payload, base_margin_);
  PutU32(&payload, num_features_);
  for (const std::string& name : meta_.feature_names) PutString(&payload, name);
  for (const auto* list : {&meta_.importance, &meta_.metrics}) {
    PutU32(&payload, static_cast<uint32_t>(list->size()));
    for (const auto& [name, value] : *list) {
      PutString(&payload, name);
      PutF64(&payload, value);
    }
  }
  PutU32(&payload, static_cast<uint32_t>(roots_.size()));
  for (uint32_t root : roots_) PutU32(&payload, root);
  PutU32(&payload, static_cast<uint32_t>(nodes_.size()));
  for (const Node& n : nodes_) {
    PutU32(&payload, n.feature);
    PutU32(&payload, std::bit_cast<uint32_t>(n.value));
    PutU32(&payload, n.left);
    PutU32(&payload, n.right);
    PutU32(&payload, n.default_left ? 1 : 0);
  }

  return WriteModelArtifact(path, payload);
}

absl::StatusOr<std::shared_ptr<const GbdtModel>> GbdtModel::Load(const std::string& path) {
  auto payload = ReadModelArtifact(path);
  if (!payload.ok()) return payload.status();
  auto bad = [&path](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("model ", path, ": ", what));
  };

  // The checksum matched, so a failure below means a writer bug or a foreign file; every link
  // is still checked, because a bad child index would walk out of the node array.
  PayloadReader in(*payload);
  std::string kind;
  if (auto s = in.String("model kind", &kind); !s.ok()) return bad(s.message());
  if (kind != kKindGbdt) return bad(absl::StrCat("model kind is '", kind, "', not gbdt"));
  uint32_t layout = 0;
  if (auto s = in.U32("gbdt layout version", &layout); !s.ok()) return bad(s.message());
  if (layout != kGbdtLayoutVersion) {
    return absl::InvalidArgumentError(absl::StrCat("model ", path, ": gbdt layout version ", layout,
                                                   " is not supported (this build reads version ",
                                                   kGbdtLayoutVersion, ")"));
  }
  auto m = std::make_shared<GbdtModel>();
  GbdtMeta& meta = m->meta_;
  for (auto [what, dest] : {std::pair{"name", &meta.name}, {"version", &meta.version}}) {
    if (auto s = in.String(what, dest); !s.ok()) return bad(s.message());
  }
  if (auto s = in.I64("horizon", &meta.horizon_ms); !s.ok()) return bad(s.message());
  if (auto s = in.I64("trained_at", &meta.trained_at_ms); !s.ok()) return bad(s.message());
  for (auto [what, dest] : {std::pair{"platt_a", &meta.platt_a},
                            {"platt_b", &meta.platt_b},
                            {"base_margin", &m->base_margin_}}) {
    if (auto s = in.F64(what, dest); !s.ok()) return bad(s.message());
    if (!std::isfinite(*dest)) return bad(absl::StrCat(what, " is not finite"));
  }
  if (auto s = in.Count("feature count", 4, &m->num_features_); !s.ok()) return bad(s.message());
  // A leaf's self-loop reads x[0], so a model has at least one feature (FromXgboostJson
  // guarantees it too).
  if (m->num_features_ == 0) return bad("no features");
  meta.feature_names.resize(m->num_features_);
  for (std::string& name : meta.feature_names) {
    if (auto s = in.String("feature names", &name); !s.ok()) return bad(s.message());
  }
  if (auto s = ReadNamedValues(in, "importance", &meta.importance); !s.ok()) {
    return bad(s.message());
  }
  if (auto s = ReadNamedValues(in, "metrics", &meta.metrics); !s.ok()) return bad(s.message());
  uint32_t tree_count = 0, node_count = 0;
  if (auto s = in.Count("tree count", 4, &tree_count); !s.ok()) return bad(s.message());
  m->roots_.resize(tree_count);
  for (uint32_t& root : m->roots_) {
    if (auto s = in.U32("tree roots", &root); !s.ok()) return bad(s.message());
  }
  if (auto s = in.Count("node count", kNodeBytes, &node_count); !s.ok()) return bad(s.message());
  m->nodes_.resize(node_count);
  for (Node& n : m->nodes_) {
    uint32_t value_bits = 0, default_left = 0;
    for (auto [what, dest] : {std::pair{"node feature", &n.feature},
                              {"node value", &value_bits},
                              {"node left", &n.left},
                              {"node right", &n.right},
                              {"node default", &default_left}}) {
      if (auto s = in.U32(what, dest); !s.ok()) return bad(s.message());
    }
    n.value = std::bit_cast<float>(value_bits);
    n.default_left = default_left != 0;
  }
  if (in.remaining() != 0) return bad(absl::StrCat(in.remaining(), " unread payload bytes"));

  // Trees are consecutive node ranges, each starting at its root; links stay inside their tree
  // and point forward, so every walk from a root ends at a leaf.
  for (uint32_t t = 0; t < tree_count; ++t) {
    const uint32_t begin = m->roots_[t];
    const uint32_t end = t + 1 < tree_count ? m->roots_[t + 1] : node_count;
    if (t == 0 && begin != 0) return bad("the first tree does not start at node 0");
    if (end <= begin || end > node_count) {
      return bad(absl::StrCat("tree ", t, " has an empty or out-of-range node range"));
    }
    for (uint32_t i = begin; i < end; ++i) {
      const Node& n = m->nodes_[i];
      if (!std::isfinite(n.value)) return bad(absl::StrCat("node ", i, " is not finite"));
      if (n.feature == Node::kLeaf) continue;
      if (n.feature >= m->num_features_) {
        return bad(
            absl::StrCat("node ", i, " splits on feature ", n.feature, " of ", m->num_features_));
      }
      if (n.left <= i || n.right <= i || n.left >= end || n.right >= end) {
        return bad(absl::StrCat("node ", i, " links outside its tree or backwards"));
      }
    }
  }
  if (tree_count == 0 && node_count != 0) return bad("nodes without trees");
  m->BuildWalk();
  return std::shared_ptr<const GbdtModel>(std::move(m));
}

}  // namespace persona
