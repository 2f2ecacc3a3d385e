#include "common/model_artifact.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "common/hash.h"

namespace persona {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "model_artifact_XXXXXX");
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  std::string File(std::string_view name) const { return (path_ / std::string(name)).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
void WriteBytes(const std::string& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
}

// A payload with a NUL and high bytes, so nothing treats it as a C string.
const std::string kPayload = std::string("kind\0payload\xff\x80 bytes", 21);

TEST(ModelArtifactTest, RoundTripReturnsThePayloadAndLeavesNoTempFile) {
  TempDir dir;
  const std::string path = dir.File("m.psm");
  ASSERT_TRUE(WriteModelArtifact(path, kPayload).ok());
  auto read = ReadModelArtifact(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, kPayload);
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u);

  ASSERT_TRUE(WriteModelArtifact(path, "").ok());  // overwrites, and empty is a payload too
  read = ReadModelArtifact(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "");
}

TEST(ModelArtifactTest, OnDiskLayoutIsMagicVersionSizePayloadXxh64) {
  TempDir dir;
  const std::string path = dir.File("m.psm");
  ASSERT_TRUE(WriteModelArtifact(path, kPayload).ok());
  const std::string file = ReadBytes(path);
  ASSERT_EQ(file.size(), 8 + 4 + 8 + kPayload.size() + 8);
  EXPECT_EQ(file.substr(0, 8), "PERSONAM");
  uint32_t version = 0;
  uint64_t size = 0, checksum = 0;
  std::memcpy(&version, file.data() + 8, 4);
  std::memcpy(&size, file.data() + 12, 8);
  std::memcpy(&checksum, file.data() + 20 + kPayload.size(), 8);
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(size, kPayload.size());
  EXPECT_EQ(file.substr(20, kPayload.size()), kPayload);
  EXPECT_EQ(checksum, Hash64(kPayload));
}

TEST(ModelArtifactTest, FlippedByteIsDataLossChecksumMismatch) {
  TempDir dir;
  const std::string path = dir.File("m.psm");
  ASSERT_TRUE(WriteModelArtifact(path, kPayload).ok());
  const std::string good = ReadBytes(path);
  for (size_t at : {size_t{20}, size_t{30}, good.size() - 1}) {  // payload and checksum bytes
    std::string flipped = good;
    flipped[at] ^= 0x01;
    WriteBytes(path, flipped);
    const absl::Status s = ReadModelArtifact(path).status();
    EXPECT_TRUE(absl::IsDataLoss(s)) << "byte " << at << ": " << s;
    EXPECT_NE(s.message().find("checksum"), std::string::npos) << s;
  }
}

TEST(ModelArtifactTest, TruncatedFileIsDataLoss) {
  TempDir dir;
  const std::string path = dir.File("m.psm");
  ASSERT_TRUE(WriteModelArtifact(path, kPayload).ok());
  const std::string good = ReadBytes(path);
  for (size_t cut : {size_t{10}, size_t{20}, good.size() - 9, good.size() - 1}) {
    WriteBytes(path, std::string_view(good).substr(0, cut));
    const absl::Status s = ReadModelArtifact(path).status();
    EXPECT_TRUE(absl::IsDataLoss(s)) << "cut at " << cut << ": " << s;
    EXPECT_NE(s.message().find("truncated"), std::string::npos) << s;
  }
}

TEST(ModelArtifactTest, TrailingGarbageIsDataLoss) {
  TempDir dir;
  const std::string path = dir.File("m.psm");
  ASSERT_TRUE(WriteModelArtifact(path, kPayload).ok());
  WriteBytes(path, ReadBytes(path) + "x");
  const absl::Status s = ReadModelArtifact(path).status();
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_NE(s.message().find("trailing garbage"), std::string::npos) << s;
}

TEST(ModelArtifactTest, ForeignFileAndUnknownVersionAreInvalidArgument) {
  TempDir dir;
  const std::string path = dir.File("m.psm");
  WriteBytes(path, "{\"model\": \"not ours\"}\n");
  absl::Status s = ReadModelArtifact(path).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("is not a Persona model file"), std::string::npos) << s;
  WriteBytes(path, "PERS");  // shorter than the magic: still foreign, not truncated
  EXPECT_TRUE(absl::IsInvalidArgument(ReadModelArtifact(path).status()));

  ASSERT_TRUE(WriteModelArtifact(path, kPayload).ok());
  std::string future = ReadBytes(path);
  future[8] = 2;
  WriteBytes(path, future);
  s = ReadModelArtifact(path).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("format version 2"), std::string::npos) << s;
}

TEST(ModelArtifactTest, MissingFileIsNotFound) {
  TempDir dir;
  EXPECT_TRUE(absl::IsNotFound(ReadModelArtifact(dir.File("missing.psm")).status()));
}

TEST(ModelArtifactTest, UnwritableDirectoryIsInternal) {
  TempDir dir;
  const absl::Status s = WriteModelArtifact(dir.File("no/such/dir/m.psm"), kPayload);
  EXPECT_TRUE(absl::IsInternal(s)) << s;
}

}  // namespace
}  // namespace persona
