// StaticFiles: the built web dashboard (web/dist: index.html + assets/app.js, app.css, ...) held
// in memory and served at GET / and GET /assets/{file}. The dashboard is a few hundred KB, so
// every file is read once at startup: a request is a map lookup, never a filesystem access, which
// also makes path traversal impossible by construction (only files found under the root at load
// time exist). Paths are still checked and refused early ("..", percent escapes, NUL, backslash).
//
// Caching: index.html is `no-cache` (always revalidated, so a rebuilt dashboard shows at once);
// assets carry a strong ETag (xxHash64 of the content) and a max-age (the build appends
// `?v=<content hash>` to asset URLs in index.html, so a new build never meets a stale asset).
// A matching If-None-Match answers 304 with no body.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "serve/http_server.h"

namespace persona::serve {

class StaticFiles {
 public:
  // Reads every regular file under `root_dir` (recursively; relative paths with '/' become the
  // keys) into memory. NotFound when `root_dir` has no index.html; InvalidArgument when the tree
  // is larger than `max_total_bytes` (a misconfigured root such as "/" must not be slurped).
  static absl::StatusOr<StaticFiles> Load(std::string root_dir,
                                          uint64_t max_total_bytes = uint64_t{64} << 20);
  // A placeholder for a server whose dashboard was never built: GET / answers 404 with a short
  // HTML page saying how to build it; every other path is not found.
  static StaticFiles NotBuilt();

  // The response for GET `path` (the raw, still percent-encoded request path): "/" and
  // "/index.html" serve index.html, "/assets/x.js" serves assets/x.js. nullopt when no such file
  // exists or the path is refused (traversal, escapes, NUL): the caller answers its usual 404.
  // `if_none_match` is the request's If-None-Match header ("" when absent).
  std::optional<HttpResponse> Get(std::string_view path, std::string_view if_none_match) const;

  // The directory the files came from ("" for NotBuilt()), and how many files are held.
  const std::string& root() const { return root_; }
  size_t size() const { return files_.size(); }

  // The Content-Type for a file name by its extension (application/octet-stream if unknown).
  static std::string_view ContentTypeFor(std::string_view file_name);

 private:
  struct File {
    std::string body;
    std::string content_type;
    std::string etag;  // "\"<16 hex>\""
  };
  StaticFiles() = default;

  std::string root_;
  absl::flat_hash_map<std::string, File> files_;  // key: "index.html", "assets/app.js"
  bool not_built_ = false;
};

// Where the built dashboard is: the first of $PERSONA_WEB_ROOT, <exe_dir>/../web/dist,
// <exe_dir>/web/dist and ./web/dist that holds an index.html ("" when none does). `exe_path` is
// the server binary's path (argv[0] or "/proc/self/exe"; symlinks are resolved), so a build
// directory inside the source tree (build-release/persona) finds the tree's web/dist.
std::string FindWebRoot(std::string_view exe_path);

}  // namespace persona::serve
