// docs/openapi.yaml against the real server: the spec is loaded with yaml-cpp, every operation is
// turned into a request from the spec alone (path parameters and request bodies from its examples)
// and sent to a running `persona serve`; the answer must be a documented response whose JSON has
// the documented schema's required properties and property types (a shallow check). The route
// table of the API contract and the spec must list the same routes with the same scopes, and
// x-persona-scope must be what the server enforces.
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json_writer.h"
#include "serve/testing/http_client.h"
#include "serve/testing/server_process.h"

namespace persona::serve {
namespace {

using testing_util::HeaderList;
using testing_util::HttpClient;
using testing_util::Response;
using testing_util::ScopedTempDir;
using testing_util::ServerOptions;
using testing_util::ServerProcess;
using testing_util::TestConfig;

const char kSpecPath[] = PERSONA_SOURCE_DIR "/docs/openapi.yaml";
const char* const kMethods[] = {"get", "put", "post", "delete", "patch", "head", "options"};

// The route table of the API contract (docs/openapi.yaml must list exactly these).
struct ContractRoute {
  std::string method;  // upper case
  std::string path;
  std::string scope;
};
const std::vector<ContractRoute>& ContractRoutes() {
  static const auto* routes = new std::vector<ContractRoute>{
      {"POST", "/v1/events", "ingest"},
      {"GET", "/v1/cluster/applied", "ingest"},
      {"PUT", "/v1/users/{id}/attributes", "ingest"},
      {"GET", "/v1/users/{id}/profile", "read"},
      {"GET", "/v1/users/{id}/timeline", "read"},
      {"POST", "/v1/profiles:batchGet", "read"},
      {"DELETE", "/v1/users/{id}", "admin"},
      {"GET", "/v1/users/{id}/recommendations", "read"},
      {"GET", "/v1/items/{id}/similar", "read"},
      {"GET", "/v1/trending", "read"},
      {"GET", "/v1/users/{id}/predictions", "read"},
      {"GET", "/v1/segments", "read"},
      {"GET", "/v1/forecast", "read"},
      {"GET", "/v1/models", "read"},
      {"GET", "/v1/stats", "read"},
      {"GET", "/healthz", "none"},
      {"GET", "/readyz", "none"},
      {"GET", "/metrics", "none"},
      {"POST", "/v1/admin/checkpoint", "admin"},
      {"POST", "/v1/admin/reload", "admin"},
      {"GET", "/v1/audiences:fields", "read"},
      {"POST", "/v1/audiences:query", "read"},
      {"POST", "/v1/audiences:report", "read"},
      {"GET", "/v1/audiences:export", "read"},
      {"GET", "/v1/audiences", "read"},
      {"POST", "/v1/audiences", "admin"},
      {"GET", "/v1/audiences/{id}", "read"},
      {"DELETE", "/v1/audiences/{id}", "admin"},
      {"GET", "/v1/audiences/{id}/members", "read"},
      {"GET", "/v1/audiences/{id}/export", "read"},
      {"GET", "/v1/audiences/{id}/report", "read"},
      {"GET", "/v1/audiences/{id}/changes", "read"},
      {"GET", "/", "none"},
      {"GET", "/assets/{file}", "none"},
  };
  return *routes;
}

// Copyable but not assignable: assigning a YAML::Node writes through to the node it refers to,
// so an assignment (std::sort, std::partition) would overwrite parts of the spec.
struct Operation {
  std::string method;  // upper case
  std::string path;    // template, "/v1/users/{id}/profile"
  YAML::Node path_item;
  YAML::Node op;
  Operation& operator=(const Operation&) = delete;
  std::string Name() const { return method + " " + path; }
};

// Follows "$ref": "#/a/b/c" within the spec until a node without $ref; an undefined node when a
// reference does not resolve. (yaml-cpp's Node::operator= writes through to the referenced node,
// so nodes are re-pointed with reset() and only read through const references.)
YAML::Node Resolve(const YAML::Node& spec, const YAML::Node& start) {
  // A missing key yields an invalid node, which reset() refuses.
  if (!start.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
  YAML::Node node;
  node.reset(start);
  for (int depth = 0; depth < 16; ++depth) {
    const YAML::Node& current = node;
    if (!current.IsDefined() || !current.IsMap() || !current["$ref"]) return node;
    const std::string ref = current["$ref"].as<std::string>();
    if (ref.rfind("#/", 0) != 0) return YAML::Node(YAML::NodeType::Undefined);
    YAML::Node target;
    target.reset(spec);
    for (absl::string_view part : absl::StrSplit(ref.substr(2), '/')) {
      const YAML::Node& at = target;
      if (!at.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
      YAML::Node next = at[std::string(part)];
      if (!next) return YAML::Node(YAML::NodeType::Undefined);
      target.reset(next);
    }
    node.reset(target);
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

// Whether `s` is a JSON number (-?int frac? exp?). Hand-written: std::regex trips GCC 12's
// -Wmaybe-uninitialized at -O2.
bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  const size_t int_start = i;
  const size_t int_digits = digits();
  if (int_digits == 0 || (int_digits > 1 && s[int_start] == '0')) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

// YAML -> JSON text. Quoted scalars are strings; plain ones are null/bool/number when they read
// as such (YAML 1.2 core schema), else strings.
void AppendJson(const YAML::Node& n, std::string* out) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      *out += '{';
      bool first = true;
      for (const auto& kv : n) {
        if (!first) *out += ',';
        first = false;
        *out += '"';
        JsonWriter::AppendEscaped(*out, kv.first.as<std::string>());
        *out += "\":";
        AppendJson(kv.second, out);
      }
      *out += '}';
      break;
    }
    case YAML::NodeType::Sequence: {
      *out += '[';
      for (size_t i = 0; i < n.size(); ++i) {
        if (i > 0) *out += ',';
        AppendJson(n[i], out);
      }
      *out += ']';
      break;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = n.Scalar();
      if (n.Tag() != "!") {
        if (s == "null" || s == "~" || s.empty()) {
          *out += "null";
          return;
        }
        if (s == "true" || s == "false") {
          *out += s;
          return;
        }
        if (IsJsonNumber(s)) {
          *out += s;
          return;
        }
      }
      *out += '"';
      JsonWriter::AppendEscaped(*out, s);
      *out += '"';
      break;
    }
    default:
      *out += "null";
  }
}

std::string ToJson(const YAML::Node& n) {
  std::string out;
  AppendJson(n, &out);
  return out;
}

// The JSON type names of OpenAPI for a simdjson element.
bool HasType(simdjson::dom::element e, const std::string& type) {
  using T = simdjson::dom::element_type;
  const T t = e.type();
  if (type == "object") return t == T::OBJECT;
  if (type == "array") return t == T::ARRAY;
  if (type == "string") return t == T::STRING;
  if (type == "boolean") return t == T::BOOL;
  if (type == "integer") return t == T::INT64 || t == T::UINT64;
  if (type == "number") return t == T::INT64 || t == T::UINT64 || t == T::DOUBLE;
  return false;
}

// Whether `e` has the schema's type (oneOf/anyOf: one alternative; allOf: every part).
bool MatchesType(const YAML::Node& spec, const YAML::Node& schema_in, simdjson::dom::element e) {
  const YAML::Node schema = Resolve(spec, schema_in);
  if (!schema || !schema.IsMap()) return true;
  if (e.is_null() && schema["nullable"] && schema["nullable"].as<bool>()) return true;
  for (const char* any : {"oneOf", "anyOf"}) {
    if (schema[any]) {
      for (const auto& alt : schema[any]) {
        if (MatchesType(spec, alt, e)) return true;
      }
      return false;
    }
  }
  if (schema["allOf"]) {
    for (const auto& part : schema["allOf"]) {
      if (!MatchesType(spec, part, e)) return false;
    }
  }
  if (!schema["type"]) return true;
  return HasType(e, schema["type"].as<std::string>());
}

// Shallow schema check of a JSON document: its type, the required properties, the types of the
// top-level properties the schema describes, and the type of array items. Problems go to *errors.
void CheckAgainstSchema(const YAML::Node& spec, const YAML::Node& schema_in,
                        simdjson::dom::element root, std::vector<std::string>* errors) {
  const YAML::Node schema = Resolve(spec, schema_in);
  if (!schema) {
    errors->push_back("schema does not resolve");
    return;
  }
  if (!MatchesType(spec, schema, root)) {
    errors->push_back("top level is not of the documented type");
    return;
  }
  simdjson::dom::object object;
  if (root.get_object().get(object)) return;
  if (schema["required"]) {
    for (const auto& name : schema["required"]) {
      simdjson::dom::element v;
      if (object.at_key(name.as<std::string>()).get(v)) {
        errors->push_back("required property \"" + name.as<std::string>() + "\" missing");
      }
    }
  }
  if (!schema["properties"]) return;
  for (const auto& kv : schema["properties"]) {
    const std::string name = kv.first.as<std::string>();
    simdjson::dom::element v;
    if (object.at_key(name).get(v)) continue;
    if (!MatchesType(spec, kv.second, v)) {
      errors->push_back("property \"" + name + "\" has the wrong type");
      continue;
    }
    const YAML::Node prop = Resolve(spec, kv.second);
    simdjson::dom::array items;
    if (prop["items"] && !v.get_array().get(items)) {
      for (simdjson::dom::element item : items) {
        if (!MatchesType(spec, prop["items"], item)) {
          errors->push_back("an item of \"" + name + "\" has the wrong type");
          break;
        }
      }
    }
  }
}

std::string Upper(std::string s) {
  absl::AsciiStrToUpper(&s);
  return s;
}

class ServeIntegrationOpenApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      mutable_spec().reset(YAML::LoadFile(kSpecPath));
    } catch (const YAML::Exception& e) {
      load_error() = absl::StrCat(kSpecPath, ": ", e.what());
    }
  }
  static YAML::Node& mutable_spec() {
    static YAML::Node node;
    return node;
  }
  // Read-only view: const operator[] never inserts into the document.
  static const YAML::Node& spec() { return mutable_spec(); }
  static std::string& load_error() {
    static std::string error;
    return error;
  }
  void SetUp() override {
    ASSERT_TRUE(load_error().empty()) << load_error();
    ASSERT_TRUE(spec().IsMap()) << kSpecPath << " is not a YAML mapping";
  }

  static std::vector<Operation> Operations() {
    std::vector<Operation> ops;
    for (const auto& path : spec()["paths"]) {
      for (const char* m : kMethods) {
        if (path.second[m]) {
          ops.push_back({Upper(m), path.first.as<std::string>(), path.second, path.second[m]});
        }
      }
    }
    return ops;
  }

  // Path and operation parameters, resolved.
  static std::vector<YAML::Node> Parameters(const Operation& o) {
    std::vector<YAML::Node> params;
    for (const YAML::Node& list : {o.path_item["parameters"], o.op["parameters"]}) {
      if (!list) continue;
      for (const auto& p : list) params.push_back(Resolve(spec(), p));
    }
    return params;
  }

  // The request target from the spec's examples ("u1" for a path parameter without one).
  static std::string Target(const Operation& o) {
    std::string path = o.path;
    std::string query;
    for (const YAML::Node& p : Parameters(o)) {
      const std::string name = p["name"].as<std::string>();
      const std::string in = p["in"].as<std::string>();
      const std::string example = p["example"] ? p["example"].as<std::string>() : "";
      if (in == "path") {
        const std::string value = example.empty() ? "u1" : example;
        const size_t at = path.find("{" + name + "}");
        if (at != std::string::npos) path.replace(at, name.size() + 2, value);
      } else if (in == "query" && !example.empty()) {
        absl::StrAppend(&query, query.empty() ? "?" : "&", name, "=", example);
      }
    }
    return path + query;
  }

  // The request body from the operation's example: (content type, body).
  static std::pair<std::string, std::string> Body(const Operation& o) {
    const YAML::Node body = Resolve(spec(), o.op["requestBody"]);
    if (!body || !body["content"]) return {"", ""};
    if (body["content"]["application/json"]) {
      const YAML::Node media = body["content"]["application/json"];
      if (media["example"]) return {"application/json", ToJson(media["example"])};
      // `examples` (exclusive with `example` in OpenAPI): the first one.
      if (media["examples"] && media["examples"].size() > 0) {
        return {"application/json",
                ToJson(Resolve(spec(), media["examples"].begin()->second)["value"])};
      }
      return {"application/json", "{}"};
    }
    for (const auto& media : body["content"]) {
      if (media.second["example"]) {
        return {media.first.as<std::string>(), media.second["example"].as<std::string>()};
      }
    }
    return {"", ""};
  }

  // Checks `r` against the operation's documented responses; "" when it conforms.
  static std::string CheckResponse(const Operation& o, const Response& r) {
    const YAML::Node documented = o.op["responses"][std::to_string(r.status)];
    if (!documented) return absl::StrCat("status ", r.status, " is not documented");
    const YAML::Node response = Resolve(spec(), documented);
    if (!response["content"]) return "";
    const std::string content_type = r.Header("Content-Type");
    if (response["content"]["application/json"]) {
      if (content_type.rfind("application/json", 0) != 0) {
        return "documented as application/json, answered " + content_type;
      }
      simdjson::dom::parser parser;
      simdjson::dom::element root;
      if (parser.parse(r.body).get(root)) return "the body is not JSON";
      std::vector<std::string> errors;
      CheckAgainstSchema(spec(), response["content"]["application/json"]["schema"], root, &errors);
      std::string out;
      for (const auto& e : errors) absl::StrAppend(&out, e, "; ");
      return out;
    }
    for (const auto& media : response["content"]) {
      const std::string type = media.first.as<std::string>();
      const std::string base = type.substr(0, type.find(';'));
      if (content_type.rfind(base, 0) == 0) return "";
    }
    return "Content-Type " + content_type + " is not documented";
  }
};

TEST_F(ServeIntegrationOpenApiTest, SpecIsOpenApi303WithTheContractRoutesAndScopes) {
  EXPECT_EQ(spec()["openapi"].as<std::string>(""), "3.0.3");
  ASSERT_TRUE(spec()["info"]["title"]);
  ASSERT_TRUE(spec()["info"]["version"]);
  std::set<std::pair<std::string, std::string>> in_spec, in_contract;
  std::map<std::pair<std::string, std::string>, std::string> scopes;
  for (const Operation& o : Operations()) {
    in_spec.insert({o.method, o.path});
    scopes[{o.method, o.path}] = o.op["x-persona-scope"].as<std::string>("<missing>");
  }
  for (const ContractRoute& r : ContractRoutes()) {
    in_contract.insert({r.method, r.path});
    const std::pair<std::string, std::string> key(r.method, r.path);
    EXPECT_EQ(scopes[key], r.scope) << r.method << " " << r.path;
  }
  for (const auto& route : in_contract) {
    EXPECT_TRUE(in_spec.count(route)) << route.first << " " << route.second << " not in the spec";
  }
  for (const auto& route : in_spec) {
    EXPECT_TRUE(in_contract.count(route))
        << route.first << " " << route.second << " is in the spec but not in the contract";
  }
}

TEST_F(ServeIntegrationOpenApiTest, EveryOperationIsDocumentedCompletely) {
  std::set<std::string> tags, operation_ids;
  for (const auto& t : spec()["tags"]) tags.insert(t["name"].as<std::string>());
  const YAML::Node schemes = spec()["components"]["securitySchemes"];
  EXPECT_TRUE(schemes["bearerAuth"]) << "bearer scheme";
  EXPECT_EQ(schemes["apiKeyHeader"]["name"].as<std::string>(""), "X-Api-Key");
  for (const Operation& o : Operations()) {
    SCOPED_TRACE(o.Name());
    const std::string id = o.op["operationId"].as<std::string>("");
    EXPECT_FALSE(id.empty());
    EXPECT_TRUE(operation_ids.insert(id).second) << "duplicate operationId " << id;
    EXPECT_TRUE(o.op["summary"]);
    ASSERT_TRUE(o.op["tags"] && o.op["tags"].size() > 0);
    for (const auto& t : o.op["tags"]) EXPECT_TRUE(tags.count(t.as<std::string>())) << t;
    const std::string scope = o.op["x-persona-scope"].as<std::string>("");
    EXPECT_TRUE(scope == "ingest" || scope == "read" || scope == "admin" || scope == "none")
        << "x-persona-scope: " << scope;
    // Routes behind a scope answer 401/403, and document them.
    if (scope != "none") {
      EXPECT_TRUE(o.op["responses"]["401"]) << "401 undocumented";
      EXPECT_TRUE(o.op["responses"]["403"]) << "403 undocumented";
      EXPECT_FALSE(o.op["security"] && o.op["security"].size() == 0) << "scoped but open";
    } else if (o.path != "/metrics") {
      EXPECT_TRUE(o.op["security"] && o.op["security"].size() == 0) << "open routes say so";
    }
    // Every path parameter of the template is declared.
    std::set<std::string> declared;
    for (const YAML::Node& p : Parameters(o)) {
      ASSERT_TRUE(p) << "a parameter $ref does not resolve";
      if (p["in"].as<std::string>() == "path") declared.insert(p["name"].as<std::string>());
    }
    for (size_t open = o.path.find('{'); open != std::string::npos;
         open = o.path.find('{', open + 1)) {
      const std::string name = o.path.substr(open + 1, o.path.find('}', open) - open - 1);
      EXPECT_TRUE(declared.count(name)) << "path parameter " << name << " undeclared";
    }
    // `example` and `examples` exclude each other (OpenAPI 3.0.3, Media Type Object).
    const YAML::Node request = Resolve(spec(), o.op["requestBody"]);
    if (request && request["content"]) {
      for (const auto& media : request["content"]) {
        EXPECT_FALSE(media.second["example"] && media.second["examples"])
            << "request " << media.first << " has both example and examples";
      }
    }
    // Each documented response has a description, and its JSON examples fit its schema.
    for (const auto& code : o.op["responses"]) {
      const YAML::Node response = Resolve(spec(), code.second);
      ASSERT_TRUE(response) << code.first << ": $ref does not resolve";
      EXPECT_TRUE(response["description"]) << code.first;
      const YAML::Node json = response["content"]["application/json"];
      if (!json) continue;
      EXPECT_TRUE(Resolve(spec(), json["schema"])) << code.first << ": schema missing";
      if (!json["example"]) continue;
      simdjson::dom::parser parser;
      simdjson::dom::element root;
      const std::string text = ToJson(json["example"]);
      ASSERT_FALSE(parser.parse(text).get(root)) << code.first << " example: " << text;
      std::vector<std::string> errors;
      CheckAgainstSchema(spec(), json["schema"], root, &errors);
      EXPECT_TRUE(errors.empty()) << code.first << " example " << text << ": " << errors[0];
    }
  }
}

TEST_F(ServeIntegrationOpenApiTest, EveryRefResolves) {
  std::vector<std::string> broken;
  std::function<void(const YAML::Node&)> walk = [&](const YAML::Node& n) {
    if (n.IsMap()) {
      if (n["$ref"] && !Resolve(spec(), n)) broken.push_back(n["$ref"].as<std::string>());
      for (const auto& kv : n) walk(kv.second);
    } else if (n.IsSequence()) {
      for (const auto& item : n) walk(item);
    }
  };
  walk(spec());
  EXPECT_TRUE(broken.empty()) << "unresolved: " << broken.front();
}

// ---------------------------------------------------------------------------------------------
// Against a running server with one key per scope and one with all of them.

class ServeIntegrationOpenApiServerTest : public ServeIntegrationOpenApiTest {
 protected:
  static void SetUpTestSuite() {
    ServeIntegrationOpenApiTest::SetUpTestSuite();
    dir() = std::make_unique<ScopedTempDir>("serve_openapi");
    TestConfig config;
    config.engine_toml = "partitions = 2\n";
    config.server_toml = "access_log = \"\"\n";
    config.api_keys = {{"all", "k-all", {"ingest", "read", "admin"}},
                       {"ingest", "k-ingest", {"ingest"}},
                       {"read", "k-read", {"read"}},
                       {"admin", "k-admin", {"admin"}}};
    const std::string config_file = dir()->File("persona.toml");
    if (auto s = testing_util::WriteConfigFile(config_file, config); !s.ok()) {
      start_error() = s.ToString();
      return;
    }
    ServerOptions options;
    options.data_dir = dir()->File("data");
    options.config_file = config_file;
    auto started = ServerProcess::Start(options);
    if (!started.ok()) {
      start_error() = started.status().ToString();
      return;
    }
    server() = *std::move(started);
    // Users the examples name.
    HttpClient c = server()->Client();
    std::string events = "[";
    int n = 0;
    for (const char* user : {"u1", "u2", "u-erase"}) {
      for (const char* type : {"view", "cart"}) {
        absl::StrAppend(&events, n > 0 ? "," : "", R"({"user_id":")", user, R"(","type":")", type,
                        R"(","ts":)", 1569888000000 + n, R"(,"item_id":"sku-1"})");
        ++n;
      }
    }
    events += "]";
    auto r = c.Post("/v1/events", events, {{"Authorization", "Bearer k-all"}});
    if (!r.ok() || r->status != 200) {
      start_error() =
          "preloading events failed: " + (r.ok() ? r->Describe() : r.status().ToString());
    }
  }
  static void TearDownTestSuite() {
    if (server() != nullptr) {
      server()->Terminate(SIGTERM);
      auto exit = server()->WaitExit(std::chrono::seconds(60));
      EXPECT_TRUE(exit.ok() && exit->exited && exit->code == 0)
          << (exit.ok() ? exit->ToString() : exit.status().ToString()) << "\n"
          << server()->OutputTail();
    }
    server().reset();
    dir().reset();
  }
  static std::unique_ptr<ServerProcess>& server() {
    static std::unique_ptr<ServerProcess> s;
    return s;
  }
  static std::unique_ptr<ScopedTempDir>& dir() {
    static std::unique_ptr<ScopedTempDir> d;
    return d;
  }
  static std::string& start_error() {
    static std::string e;
    return e;
  }
  void SetUp() override {
    ServeIntegrationOpenApiTest::SetUp();
    ASSERT_TRUE(start_error().empty()) << start_error();
    ASSERT_NE(server(), nullptr);
    ASSERT_TRUE(server()->running()) << server()->OutputTail();
  }
  void TearDown() override {
    if (HasFailure() && server() != nullptr) {
      std::cerr << "server output (tail):\n" << server()->OutputTail() << "\n";
    }
  }

  static Response Send(HttpClient& c, const Operation& o, const std::string& secret) {
    const auto [content_type, body] = Body(o);
    HeaderList headers;
    if (!content_type.empty()) headers.push_back({"Content-Type", content_type});
    if (!secret.empty()) headers.push_back({"Authorization", "Bearer " + secret});
    auto r = c.Request(o.method, Target(o), body, headers);
    EXPECT_TRUE(r.ok()) << o.Name() << ": " << r.status();
    return r.ok() ? *r : Response{};
  }
};

TEST_F(ServeIntegrationOpenApiServerTest, EveryOperationAnswersAsDocumented) {
  // Erasure last, so that the other examples still find their users.
  std::vector<Operation> ops;
  for (const Operation& o : Operations()) {
    if (o.method != "DELETE") ops.push_back(o);
  }
  for (const Operation& o : Operations()) {
    if (o.method == "DELETE") ops.push_back(o);
  }
  HttpClient c = server()->Client();
  for (const Operation& o : ops) {
    SCOPED_TRACE(o.Name() + " as " + Target(o));
    const Response r = Send(c, o, "k-all");
    EXPECT_GE(r.status, 200) << r.Describe();
    EXPECT_LT(r.status, 300) << "the spec's own example should succeed: " << r.Describe();
    const std::string problem = CheckResponse(o, r);
    EXPECT_TRUE(problem.empty()) << problem << "\n" << r.Describe();
  }
}

TEST_F(ServeIntegrationOpenApiServerTest, XPersonaScopeIsWhatTheServerEnforces) {
  const std::map<std::string, std::string> keys = {
      {"ingest", "k-ingest"}, {"read", "k-read"}, {"admin", "k-admin"}};
  HttpClient c = server()->Client();
  for (const Operation& o : Operations()) {
    if (o.method == "DELETE") continue;  // the erasure example is consumed by another test
    const std::string scope = o.op["x-persona-scope"].as<std::string>("");
    SCOPED_TRACE(o.Name() + " (x-persona-scope: " + scope + ")");
    Response anonymous = Send(c, o, "");
    if (scope == "none") {
      EXPECT_LT(anonymous.status, 300)
          << "open route refused without a key: " << anonymous.Describe();
      continue;
    }
    EXPECT_EQ(anonymous.status, 401) << anonymous.Describe();
    EXPECT_TRUE(CheckResponse(o, anonymous).empty()) << CheckResponse(o, anonymous);
    for (const auto& [key_scope, secret] : keys) {
      Response r = Send(c, o, secret);
      if (key_scope == scope) {
        EXPECT_TRUE(r.status != 401 && r.status != 403)
            << "the " << key_scope << " key was refused: " << r.Describe();
      } else {
        EXPECT_EQ(r.status, 403) << "the " << key_scope << " key: " << r.Describe();
        EXPECT_TRUE(CheckResponse(o, r).empty()) << CheckResponse(o, r);
      }
    }
  }
}

TEST_F(ServeIntegrationOpenApiServerTest, UndocumentedMethodsAre405AndAllowListsTheSpecMethods) {
  std::map<std::string, std::set<std::string>> methods;  // path template -> documented methods
  for (const Operation& o : Operations()) methods[o.path].insert(o.method);
  HttpClient c = server()->Client();
  for (const auto& [path, documented] : methods) {
    std::string target = path;
    if (size_t at = target.find("{id}"); at != std::string::npos) target.replace(at, 4, "u1");
    SCOPED_TRACE("PATCH " + target);
    auto r = c.Request("PATCH", target, "{}", {{"Authorization", "Bearer k-all"}});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 405) << r->Describe();
    std::set<std::string> allowed;
    for (absl::string_view m : absl::StrSplit(r->Header("Allow"), ',')) {
      std::string method(absl::StripAsciiWhitespace(m));
      if (!method.empty() && method != "HEAD" && method != "OPTIONS") allowed.insert(method);
    }
    EXPECT_EQ(allowed, documented) << "Allow: " << r->Header("Allow");
  }
}

TEST_F(ServeIntegrationOpenApiServerTest, RoutesOutsideTheSpecAre404) {
  HttpClient c = server()->Client();
  for (const std::string target :
       {"/v1/users/u1/predictions/x", "/v1/items/i1", "/v1/trending/x", "/v1/audiences/x/unknown",
        "/v1/audiences:unknown", "/v1/admin", "/v1/admin/compact", "/openapi.yaml", "/index.html",
        "/assets", "/assets/x/y.js"}) {
    SCOPED_TRACE(target);
    auto r = c.Request("GET", target, "", {{"Authorization", "Bearer k-all"}});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 404) << r->Describe();
  }
}

}  // namespace
}  // namespace persona::serve
