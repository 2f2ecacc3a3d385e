#include "serve/static_files.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace persona::serve {
namespace {

namespace fs = std::filesystem;

std::string Header(const HttpResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

void WriteFile(const fs::path& path, std::string_view body) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << body;
}

// A built dashboard in miniature: index, assets of each served type, and files that must never
// be served (a hidden file, one outside the root reachable only by traversal).
class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() /
            ("static_files_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    root_ = base_ / "web" / "dist";
    WriteFile(root_ / "index.html", "<!doctype html><title>Persona</title>");
    WriteFile(root_ / "assets" / "app.js", "console.log('persona');");
    WriteFile(root_ / "assets" / "app.css", "body{margin:0}");
    WriteFile(root_ / "assets" / "logo.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>");
    WriteFile(root_ / "assets" / "app.js.map", "{}");
    WriteFile(root_ / "assets" / "font.woff2", std::string("wOF2\0\1", 6));
    WriteFile(root_ / ".env", "SECRET=1");
    WriteFile(base_ / "web" / "secret.txt", "outside the root");
  }
  void TearDown() override {
    unsetenv("PERSONA_WEB_ROOT");
    fs::remove_all(base_);
  }

  StaticFiles Loaded() {
    auto files = StaticFiles::Load(root_.string());
    EXPECT_TRUE(files.ok()) << files.status();
    return std::move(*files);
  }

  fs::path base_;
  fs::path root_;
};

TEST_F(StaticFilesTest, ServesIndexAtRootWithHtmlTypeAndNoCache) {
  StaticFiles files = Loaded();
  for (std::string_view path : {"/", "/index.html"}) {
    auto r = files.Get(path, "");
    ASSERT_TRUE(r.has_value()) << path;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->content_type, "text/html; charset=utf-8");
    EXPECT_EQ(r->body, "<!doctype html><title>Persona</title>");
    EXPECT_EQ(Header(*r, "Cache-Control"), "no-cache");
    EXPECT_NE(Header(*r, "Content-Security-Policy").find("default-src 'self'"), std::string::npos);
    EXPECT_FALSE(Header(*r, "ETag").empty());
  }
}

TEST_F(StaticFilesTest, ServesAssetsWithTheirContentTypes) {
  StaticFiles files = Loaded();
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"/assets/app.js", "text/javascript; charset=utf-8"},
      {"/assets/app.css", "text/css; charset=utf-8"},
      {"/assets/logo.svg", "image/svg+xml"},
      {"/assets/app.js.map", "application/json"},
      {"/assets/font.woff2", "font/woff2"},
  };
  for (const auto& [path, type] : cases) {
    auto r = files.Get(path, "");
    ASSERT_TRUE(r.has_value()) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->content_type, type) << path;
    EXPECT_EQ(Header(*r, "Cache-Control"), "public, max-age=86400") << path;
    EXPECT_EQ(Header(*r, "X-Content-Type-Options"), "nosniff") << path;
  }
  EXPECT_EQ(files.Get("/assets/app.js", "")->body, "console.log('persona');");
  EXPECT_EQ(files.Get("/assets/font.woff2", "")->body.size(), 6u);  // binary-safe
  EXPECT_EQ(StaticFiles::ContentTypeFor("x.PNG"), "image/png");
  EXPECT_EQ(StaticFiles::ContentTypeFor("x.json"), "application/json");
  EXPECT_EQ(StaticFiles::ContentTypeFor("README"), "application/octet-stream");
}

TEST_F(StaticFilesTest, MatchingIfNoneMatchAnswers304WithoutBody) {
  StaticFiles files = Loaded();
  const std::string etag = Header(*files.Get("/assets/app.js", ""), "ETag");
  ASSERT_EQ(etag.size(), 18u);  // quoted 16 hex digits
  for (const std::string& inm : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    auto r = files.Get("/assets/app.js", inm);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 304) << inm;
    EXPECT_TRUE(r->body.empty()) << inm;
    EXPECT_EQ(Header(*r, "ETag"), etag);
  }
  auto stale = files.Get("/assets/app.js", "\"0000000000000000\"");
  EXPECT_EQ(stale->status, 200);
  EXPECT_FALSE(stale->body.empty());
  // Different content, different tag.
  EXPECT_NE(Header(*files.Get("/assets/app.css", ""), "ETag"), etag);
}

TEST_F(StaticFilesTest, RefusesTraversalEscapesAndHiddenFiles) {
  StaticFiles files = Loaded();
  for (std::string_view path :
       {"/../secret.txt", "/assets/../../secret.txt", "/assets/..%2f..%2fsecret.txt",
        "/assets%2fapp.js", "/assets/%2e%2e/index.html", "/assets/app.js%00.css", "/.env",
        "/assets//app.js", "/assets/./app.js", "/assets\\app.js", "assets/app.js", "",
        "/assets/", "/assets"}) {
    EXPECT_FALSE(files.Get(path, "").has_value()) << path;
  }
  EXPECT_FALSE(files.Get(std::string_view("/assets/app.js\0x", 16), "").has_value());
}

TEST_F(StaticFilesTest, MissingFileIsNotFound) {
  StaticFiles files = Loaded();
  EXPECT_FALSE(files.Get("/assets/missing.js", "").has_value());
  EXPECT_FALSE(files.Get("/favicon.ico", "").has_value());
  EXPECT_EQ(files.size(), 6u);  // index + 5 assets; .env is never loaded
}

TEST_F(StaticFilesTest, LoadRefusesRootWithoutIndexOrTooLarge) {
  auto none = StaticFiles::Load((base_ / "web").string());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  auto big = StaticFiles::Load(root_.string(), /*max_total_bytes=*/16);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StaticFilesTest, FileChangedAfterLoadIsServedAsLoaded) {
  StaticFiles files = Loaded();
  WriteFile(root_ / "assets" / "app.js", "changed");
  EXPECT_EQ(files.Get("/assets/app.js", "")->body, "console.log('persona');");
}

TEST_F(StaticFilesTest, NotBuiltAnswersRootWithInstructions) {
  StaticFiles files = StaticFiles::NotBuilt();
  auto r = files.Get("/", "");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->content_type, "text/html; charset=utf-8");
  EXPECT_NE(r->body.find("npm run build"), std::string::npos);
  EXPECT_FALSE(files.Get("/assets/app.js", "").has_value());
}

TEST_F(StaticFilesTest, FindWebRootPrefersEnvThenExeRelative) {
  // <base>/build/persona -> <base>/build/../web/dist.
  const fs::path exe = base_ / "build" / "persona";
  WriteFile(exe, "");
  EXPECT_EQ(fs::path(FindWebRoot(exe.string())), fs::canonical(root_));
  // $PERSONA_WEB_ROOT wins when it holds an index.html...
  const fs::path other = base_ / "other";
  WriteFile(other / "index.html", "x");
  setenv("PERSONA_WEB_ROOT", other.c_str(), 1);
  EXPECT_EQ(fs::path(FindWebRoot(exe.string())), fs::canonical(other));
  // ...and is skipped when it does not.
  setenv("PERSONA_WEB_ROOT", (base_ / "nothing").c_str(), 1);
  EXPECT_EQ(fs::path(FindWebRoot(exe.string())), fs::canonical(root_));
  unsetenv("PERSONA_WEB_ROOT");
  // <exe_dir>/web/dist (in a directory whose parent has no web/dist).
  const fs::path flat = base_ / "opt" / "persona";
  WriteFile(flat / "persona", "");
  WriteFile(flat / "web" / "dist" / "index.html", "y");
  EXPECT_EQ(fs::path(FindWebRoot((flat / "persona").string())),
            fs::canonical(flat / "web" / "dist"));
}

TEST_F(StaticFilesTest, FindWebRootIsEmptyWhenNothingIsBuilt) {
  const fs::path exe = base_ / "lonely" / "bin" / "persona";
  WriteFile(exe, "");
  // The fallback ./web/dist is relative to the working directory: run from an empty one.
  const fs::path cwd = fs::current_path();
  fs::current_path(exe.parent_path());
  const std::string found = FindWebRoot(exe.string());
  fs::current_path(cwd);
  EXPECT_EQ(found, "");
}

}  // namespace
}  // namespace persona::serve
