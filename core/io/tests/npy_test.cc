// Goal: the .npy reader/writer round-trips every storage dtype bit for bit and rejects malformed
// files (bad magic, version, header syntax, dtype, order, shape overflow, truncated or trailing
// data) with an InvalidInput that says what was wrong.
// Method: random non-zero tensors (rcsim::Prng) encoded and decoded; hand-built headers exercise
// each rejection; a golden header checks the exact bytes NumPy expects (alignment, 1-tuple comma).
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/check.h"
#include "core/io/npy.h"
#include "core/prng.h"

namespace rcsim::io {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kSeed = 0x4E5059ull;

HostTensor random_tensor(DType dtype, std::vector<int64_t> shape, uint64_t stream) {
  Prng rng = Prng::stream(kSeed, "npy", stream);
  HostTensor t(dtype, std::move(shape));
  for (int64_t i = 0; i < t.bytes(); ++i) {
    t.data()[i] = static_cast<std::byte>(1 + rng.below(255));  // non-zero bytes
  }
  return t;
}

std::vector<std::byte> image(const std::string& header, std::size_t data_bytes,
                             uint8_t major = 1) {
  std::vector<std::byte> out;
  for (char c : std::string("\x93NUMPY")) out.push_back(static_cast<std::byte>(c));
  out.push_back(static_cast<std::byte>(major));
  out.push_back(std::byte{0});
  out.push_back(static_cast<std::byte>(header.size() & 0xFF));
  out.push_back(static_cast<std::byte>(header.size() >> 8));
  if (major > 1) {
    out.push_back(std::byte{0});
    out.push_back(std::byte{0});
  }
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  out.resize(out.size() + data_bytes, std::byte{0x11});
  return out;
}

std::string rejection(std::span<const std::byte> bytes, DType dtype) {
  try {
    decode_npy(bytes, dtype, "case.npy");
  } catch (const InvalidInput& e) {
    return e.what();
  }
  return "accepted";
}

TEST(Npy, RoundTripsEveryStorageDtypeBitExact) {
  std::printf("rcsim seed: %llu\n", static_cast<unsigned long long>(kSeed));
  const std::vector<std::pair<DType, std::vector<int64_t>>> cases = {
      {DType::kBF16, {5, 1280}},       {DType::kFP16, {3, 4, 64}},
      {DType::kFP8E4M3FN, {2, 2, 8, 16, 16}}, {DType::kFP8E4M3FNUZ, {7}},
      {DType::kFP32, {3, 2, 16}},      {DType::kI64, {9}},
      {DType::kI64, {}},               {DType::kFP32, {0, 4}}};
  uint64_t stream = 0;
  for (const auto& [dtype, shape] : cases) {
    const HostTensor t = random_tensor(dtype, shape, stream++);
    const auto bytes = encode_npy(t.view());
    EXPECT_EQ(parse_npy_header(bytes, "x").data_offset % 64, 0u);
    const HostTensor back = decode_npy(bytes, dtype, "x");
    EXPECT_TRUE(back.bytes_equal(t)) << dtype_name(dtype);
  }
}

TEST(Npy, WritesNumpyCompatibleHeaders) {
  const HostTensor t = random_tensor(DType::kI64, {3}, 99);
  const auto bytes = encode_npy(t.view());
  const auto header_len = static_cast<std::size_t>(bytes[8]) | (static_cast<std::size_t>(bytes[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  const std::string text(reinterpret_cast<const char*>(bytes.data()) + 10, header_len);
  EXPECT_THAT(text, HasSubstr("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }"));
  EXPECT_EQ(text.back(), '\n');
  const HostTensor u = random_tensor(DType::kFP8E4M3FN, {2, 3}, 98);
  const auto ub = encode_npy(u.view());
  EXPECT_THAT(std::string(reinterpret_cast<const char*>(ub.data()) + 10, 64),
              HasSubstr("'descr': '|u1', 'fortran_order': False, 'shape': (2, 3)"));
}

TEST(Npy, EncodesStridedViewsInRowMajorOrder) {
  HostTensor t = random_tensor(DType::kBF16, {4, 6}, 7);
  TensorView cols = t.view();
  cols.shape[1] = 3;  // the first three columns of each row
  const HostTensor back = decode_npy(encode_npy(cols), DType::kBF16, "x");
  for (int64_t r = 0; r < 4; ++r) {
    for (int64_t c = 0; c < 3; ++c) {
      EXPECT_EQ(back.as<uint16_t>()[static_cast<std::size_t>(r * 3 + c)],
                t.as<uint16_t>()[static_cast<std::size_t>(r * 6 + c)]);
    }
  }
}

TEST(Npy, AcceptsVersionTwoAndByteOrderFreeU1) {
  EXPECT_EQ(decode_npy(image("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", 4, 2),
                       DType::kBF16, "x")
                .numel(),
            2);
  EXPECT_EQ(decode_npy(image("{'shape': (3,), 'descr': 'u1', 'fortran_order': False}", 3),
                       DType::kFP8E4M3FNUZ, "x")
                .numel(),
            3);
}

TEST(Npy, RejectsMalformedFiles) {
  const std::string good = "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }";
  struct Bad {
    std::vector<std::byte> bytes;
    DType dtype;
    const char* expect;
  };
  std::vector<std::byte> bad_magic = image(good, 12);
  bad_magic[1] = std::byte{'X'};
  std::vector<std::byte> bad_version = image(good, 12);
  bad_version[6] = std::byte{4};
  std::vector<std::byte> truncated_header = image(good, 0);
  truncated_header.resize(30);
  std::vector<std::byte> huge_header = image(good, 12, /*major=*/2);
  huge_header[10] = std::byte{0x01};  // header_len = 0x1xxxx > kNpyHeaderBytesMax
  const Bad cases[] = {
      {bad_magic, DType::kBF16, "bad magic"},
      {{std::byte{0x93}}, DType::kBF16, "bad magic"},
      {bad_version, DType::kBF16, "unsupported .npy version 4.0"},
      {truncated_header, DType::kBF16, "truncated .npy header"},
      {image(good, 11), DType::kBF16, "truncated .npy data: 11 of 12 bytes"},
      {image(good, 13), DType::kBF16, "1 trailing bytes"},
      {image(good, 12), DType::kFP32, "does not match the expected fp32"},
      {image("{'descr': '>u2', 'fortran_order': False, 'shape': (2, 3), }", 12), DType::kBF16,
       "'>u2' does not match"},
      {image("{'descr': '<u2', 'fortran_order': True, 'shape': (2, 3), }", 12), DType::kBF16,
       "Fortran-order"},
      {image("{'descr': '<u2', 'shape': (2, 3), }", 12), DType::kBF16, "lacks one of"},
      {image("{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", 12),
       DType::kBF16, "unknown key 'x'"},
      {image("{'descr': '<u2', 'fortran_order': Nope, 'shape': (2, 3), }", 12), DType::kBF16,
       "expected True or False"},
      {image("{'descr': '<u2, 'fortran_order': False, 'shape': (2, 3), }", 12), DType::kBF16,
       "malformed .npy header"},
      {image("{'descr': '<u2', 'fortran_order': False, 'shape': (2, -3), }", 12), DType::kBF16,
       "non-negative dimension"},
      {image("{'descr': '<u2', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1), }", 2),
       DType::kBF16, "more than 6 dimensions"},
      {image("{'descr': '<u2', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0),
       DType::kBF16, "overflows"},
      {image("{'descr': '<u2', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0),
       DType::kBF16, "dimension too large"},
      {image("{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), } x", 12), DType::kBF16,
       "trailing characters"},
      {huge_header, DType::kBF16, "exceeds"},
  };
  for (const Bad& b : cases) {
    const std::string why = rejection(b.bytes, b.dtype);
    EXPECT_THAT(why, HasSubstr(b.expect)) << "expected rejection: " << b.expect;
    if (why != "accepted") {
      EXPECT_THAT(why, HasSubstr("case.npy"));
    }
  }
}

TEST(Npy, FileRoundTripAndMissingFile) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("rcsim_npy_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const HostTensor t = random_tensor(DType::kFP32, {3, 5}, 5);
  write_npy(dir / "t.npy", t.view());
  EXPECT_TRUE(read_npy(dir / "t.npy", DType::kFP32).bytes_equal(t));
  EXPECT_THROW(read_npy(dir / "missing.npy", DType::kFP32), InvalidInput);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rcsim::io
