#include "serve/static_files.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/hash.h"

namespace persona::serve {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kIndex = "index.html";
// The dashboard's own code is the only script and style source; it talks only to this origin.
// Chart.js sizes canvases through the CSSOM (allowed), the build puts no inline script in HTML.
constexpr std::string_view kHtmlSecurityPolicy =
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'";

constexpr std::string_view kNotBuiltPage =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>Persona: dashboard not built</title></head>\n"
    "<body style=\"font-family:sans-serif;max-width:40em;margin:3em auto;line-height:1.5\">\n"
    "<h1>The Persona dashboard was not built</h1>\n"
    "<p>This server found no <code>web/dist/index.html</code>. Build it from the source tree "
    "(needs Node.js and npm; the first run downloads the npm packages, later runs work offline):"
    "</p>\n<pre>bash scripts/setup.sh        # or: cd web &amp;&amp; npm ci &amp;&amp; npm run "
    "build</pre>\n<p>then restart <code>persona serve</code>, or point "
    "<code>PERSONA_WEB_ROOT</code> at a built <code>web/dist</code> directory.</p>\n"
    "<p>The API itself works: try <a href=\"/healthz\">/healthz</a> and "
    "<a href=\"/metrics\">/metrics</a>.</p>\n</body></html>\n";

// Debian's Abseil has its own string_view, so the few string helpers needed here are local.
std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool HasSuffix(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A relative key made only of plain segments: no empty, ".", ".." or hidden segment, and none
// of the bytes that mean something to a filesystem or to a decoder ('%', '\\', NUL).
bool IsSafeRelativePath(std::string_view rel) {
  if (rel.empty()) return false;
  for (char c : rel) {
    if (c == '\0' || c == '\\' || c == '%' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  size_t start = 0;
  while (start <= rel.size()) {
    const size_t slash = rel.find('/', start);
    const std::string_view segment =
        rel.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (segment.empty() || segment.front() == '.') return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

// Whether an If-None-Match header value names `etag`: "*", or a comma list of entity tags,
// compared weakly (a W/ prefix is ignored) as RFC 9110 asks for If-None-Match.
bool IfNoneMatchHits(std::string_view header, std::string_view etag) {
  header = TrimSpaces(header);
  if (header.empty()) return false;
  if (header == "*") return true;
  while (!header.empty()) {
    const size_t comma = header.find(',');
    std::string_view tag = TrimSpaces(header.substr(0, comma));
    if (tag.size() > 2 && tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

absl::StatusOr<std::string> ReadWholeFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path.string()));
  return body;
}

bool HasIndex(const fs::path& dir) {
  std::error_code ec;
  return !dir.empty() && fs::is_regular_file(dir / std::string(kIndex), ec);
}

}  // namespace

std::string_view StaticFiles::ContentTypeFor(std::string_view file_name) {
  const size_t dot = file_name.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  std::string ext(file_name.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "json" || ext == "map") return "application/json";
  if (ext == "woff2") return "font/woff2";
  if (ext == "txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

absl::StatusOr<StaticFiles> StaticFiles::Load(std::string root_dir, uint64_t max_total_bytes) {
  const fs::path root(root_dir);
  if (!HasIndex(root)) {
    return absl::NotFoundError("no index.html in the web root '" + root_dir + "'");
  }
  StaticFiles files;
  files.root_ = std::move(root_dir);
  uint64_t total = 0;
  std::error_code ec;
  // Directory symlinks are not followed (the iterator's default), so the tree cannot loop.
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("cannot list '", files.root_, "': ", ec.message()));
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return absl::InternalError(absl::StrCat("listing '", files.root_, "': ", ec.message()));
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    const std::string rel = it->path().lexically_relative(root).generic_string();
    if (!IsSafeRelativePath(rel)) continue;  // hidden files, odd names: never served
    auto body = ReadWholeFile(it->path());
    if (!body.ok()) return body.status();
    total += body->size();
    if (total > max_total_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("the web root '", files.root_, "' holds more than ", max_total_bytes,
                       " bytes: is it really the built dashboard (web/dist)?"));
    }
    File f;
    f.content_type = std::string(ContentTypeFor(rel));
    f.etag = absl::StrFormat("\"%016x\"", Hash64(*body));
    f.body = std::move(*body);
    files.files_.emplace(rel, std::move(f));
  }
  return files;
}

StaticFiles StaticFiles::NotBuilt() {
  StaticFiles files;
  files.not_built_ = true;
  return files;
}

std::optional<HttpResponse> StaticFiles::Get(std::string_view path,
                                             std::string_view if_none_match) const {
  if (path.empty() || path.front() != '/') return std::nullopt;
  std::string_view rel = path.substr(1);
  if (rel.empty()) rel = kIndex;
  if (!IsSafeRelativePath(rel)) return std::nullopt;
  const bool is_index = rel == kIndex;
  if (not_built_) {
    if (!is_index) return std::nullopt;
    HttpResponse r;
    r.status = 404;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::string(kNotBuiltPage);
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
  }
  auto it = files_.find(absl::string_view(rel.data(), rel.size()));
  if (it == files_.end()) return std::nullopt;
  const File& f = it->second;

  HttpResponse r;
  r.content_type = f.content_type;
  r.headers.emplace_back("ETag", f.etag);
  // index.html is revalidated on every load; assets are addressed with ?v=<hash> by index.html.
  r.headers.emplace_back("Cache-Control", is_index ? "no-cache" : "public, max-age=86400");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (HasSuffix(rel, ".html")) {
    r.headers.emplace_back("Content-Security-Policy", std::string(kHtmlSecurityPolicy));
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
  }
  if (IfNoneMatchHits(if_none_match, f.etag)) {
    r.status = 304;
    return r;
  }
  r.status = 200;
  r.body = f.body;
  return r;
}

std::string FindWebRoot(std::string_view exe_path) {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("PERSONA_WEB_ROOT"); env != nullptr && *env != '\0') {
    candidates.emplace_back(env);
  }
  if (!exe_path.empty()) {
    std::error_code ec;
    fs::path exe = fs::canonical(fs::path(std::string(exe_path)), ec);
    if (ec) exe = fs::absolute(fs::path(std::string(exe_path)), ec);
    if (!ec) {
      const fs::path dir = exe.parent_path();
      candidates.push_back(dir / ".." / "web" / "dist");
      candidates.push_back(dir / "web" / "dist");
    }
  }
  candidates.emplace_back(fs::path("web") / "dist");
  for (const fs::path& c : candidates) {
    if (!HasIndex(c)) continue;
    std::error_code ec;
    const fs::path resolved = fs::weakly_canonical(c, ec);
    return ec ? c.string() : resolved.string();
  }
  return "";
}

}  // namespace persona::serve
