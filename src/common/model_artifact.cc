#include "common/model_artifact.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/hash.h"

namespace persona {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the envelope stores little-endian integers as raw bytes");

constexpr char kMagic[8] = {'P', 'E', 'R', 'S', 'O', 'N', 'A', 'M'};
constexpr uint32_t kFormatVersion = 1;
// magic + format version + payload length; the payload follows, then its XXH64.
constexpr size_t kHeaderSize = sizeof(kMagic) + 4 + 8;
constexpr size_t kTrailerSize = 8;

void PutU32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }
void PutU64(std::string* out, uint64_t v) { out->append(reinterpret_cast<const char*>(&v), 8); }

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot open model ", path, ": ", std::strerror(errno)));
  }
  std::string bytes;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) bytes.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return absl::DataLossError(absl::StrCat("cannot read model ", path));
  return bytes;
}

}  // namespace

absl::Status WriteModelArtifact(const std::string& path, std::string_view payload) {
  std::string header(kMagic, sizeof(kMagic));
  PutU32(&header, kFormatVersion);
  PutU64(&header, payload.size());
  std::string trailer;
  PutU64(&trailer, Hash64(payload));

  return WriteFileAtomically(path, {header, payload, trailer});
}

absl::StatusOr<std::string> ReadModelArtifact(const std::string& path) {
  auto file = ReadWholeFile(path);
  if (!file.ok()) return file.status();
  const std::string_view bytes = *file;
  auto bad = [&path](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("model ", path, ": ", what));
  };
  if (bytes.size() < sizeof(kMagic) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a Persona model file (bad magic)"));
  }
  if (bytes.size() < kHeaderSize) return bad("truncated header");
  uint32_t format_version;
  uint64_t payload_size;
  std::memcpy(&format_version, bytes.data() + sizeof(kMagic), 4);
  std::memcpy(&payload_size, bytes.data() + sizeof(kMagic) + 4, 8);
  if (format_version != kFormatVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", path, ": format version ", format_version,
                     " is not supported (this build reads version ", kFormatVersion, ")"));
  }
  const uint64_t available = bytes.size() - kHeaderSize;
  if (available < kTrailerSize || payload_size > available - kTrailerSize) {
    return bad(absl::StrCat("truncated: header promises ", payload_size,
                            " payload bytes + checksum, file has ", available,
                            " after the header"));
  }
  if (payload_size != available - kTrailerSize) {
    return bad(absl::StrCat("trailing garbage: ", available - kTrailerSize - payload_size,
                            " bytes after the checksum"));
  }
  uint64_t checksum;
  std::memcpy(&checksum, bytes.data() + kHeaderSize + payload_size, 8);
  if (checksum != Hash64(bytes.substr(kHeaderSize, payload_size))) {
    return bad("checksum mismatch (file is corrupt)");
  }
  // Shift the payload to the front in place rather than copying it: models run to megabytes.
  file->erase(0, kHeaderSize);
  file->resize(payload_size);
  return std::move(*file);
}

}  // namespace persona
