#include "core/io/npy.h"

#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "core/check.h"
#include "core/limits.h"

namespace rcsim::io {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicBytes = 6;

// A strict reader of the one Python literal .npy headers hold:
//   {'descr': '<u2', 'fortran_order': False, 'shape': (3, 4), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view name) : s_(text), name_(name) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    for (int field = 0; field < 8; ++field) {  // three keys, bounded
      skip_space();
      if (peek() == '}') break;
      const std::string key = quoted();
      expect(':');
      if (key == "descr") {
        RCSIM_REQUIRE(!have_descr, "{}: duplicate 'descr' in .npy header", name_);
        h.descr = quoted();
        have_descr = true;
      } else if (key == "fortran_order") {
        RCSIM_REQUIRE(!have_order, "{}: duplicate 'fortran_order' in .npy header", name_);
        h.fortran_order = boolean();
        have_order = true;
      } else if (key == "shape") {
        RCSIM_REQUIRE(!have_shape, "{}: duplicate 'shape' in .npy header", name_);
        h.shape = tuple();
        have_shape = true;
      } else {
        fail(fmt::format("unknown key '{}'", key));
      }
      skip_space();
      if (peek() == ',') ++pos_;
    }
    expect('}');
    skip_space();
    RCSIM_REQUIRE(pos_ == s_.size(), "{}: trailing characters after the .npy header dict", name_);
    RCSIM_REQUIRE(have_descr && have_order && have_shape,
                  "{}: .npy header lacks one of 'descr', 'fortran_order', 'shape'", name_);
    return h;
  }

 private:
  [[noreturn]] void fail(std::string_view what) const {
    throw InvalidInput(
        fmt::format("{}: malformed .npy header at byte {}: {}", name_, pos_, what));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t')) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(fmt::format("expected '{}'", c));
    ++pos_;
  }
  std::string quoted() {
    skip_space();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    const std::size_t end = s_.find(q, pos_ + 1);
    if (end == std::string_view::npos || end - pos_ > 64) fail("unterminated string");
    std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_space();
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  std::vector<int64_t> tuple() {
    expect('(');
    std::vector<int64_t> dims;
    for (int i = 0; i <= limits::kTensorRankMax; ++i) {
      skip_space();
      if (peek() == ')') {
        ++pos_;
        return dims;
      }
      RCSIM_REQUIRE(static_cast<int64_t>(dims.size()) < limits::kTensorRankMax,
                    "{}: .npy shape has more than {} dimensions", name_, limits::kTensorRankMax);
      if (peek() < '0' || peek() > '9') fail("expected a non-negative dimension");
      int64_t v = 0;
      for (int digits = 0; peek() >= '0' && peek() <= '9'; ++digits) {
        // 2^62 bounds every dimension well before int64 overflow; limits apply after.
        if (digits >= 19 || v > (int64_t{1} << 62) / 10) fail("dimension too large");
        v = v * 10 + (peek() - '0');
        ++pos_;
      }
      skip_space();
      if (peek() == 'L') ++pos_;  // Python 2 long suffix, as old NumPy wrote it
      dims.push_back(v);
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != ')') {
        fail("expected ',' or ')' in shape");
      }
    }
    fail("shape tuple not closed");
  }

  std::string_view s_;
  std::string_view name_;
  std::size_t pos_ = 0;
};

bool descr_matches(std::string_view descr, DType dtype) {
  const std::string_view want = npy_descr(dtype);
  if (descr == want) return true;
  // A byte-sized type has no byte order; NumPy writes '|u1' but '<u1' and 'u1' mean the same.
  return want == "|u1" && (descr == "<u1" || descr == "u1");
}

}  // namespace

std::string_view npy_descr(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
    case DType::kFP16: return "<u2";
    case DType::kFP8E4M3FN:
    case DType::kFP8E4M3FNUZ: return "|u1";
    case DType::kFP32: return "<f4";
    case DType::kI64: return "<i8";
  }
  return "?";
}

NpyHeader parse_npy_header(std::span<const std::byte> bytes, std::string_view name) {
  RCSIM_REQUIRE(bytes.size() >= kMagicBytes + 4 &&
                    std::memcmp(bytes.data(), kMagic, kMagicBytes) == 0,
                "{}: not an .npy file (bad magic)", name);
  const auto major = static_cast<uint8_t>(bytes[6]);
  const auto minor = static_cast<uint8_t>(bytes[7]);
  RCSIM_REQUIRE((major >= 1 && major <= 3) && minor == 0,
                "{}: unsupported .npy version {}.{}", name, major, minor);
  std::size_t header_len = 0;
  std::size_t prefix = 0;
  auto byte_at = [&](std::size_t i) { return static_cast<std::size_t>(bytes[i]); };
  if (major == 1) {
    header_len = byte_at(8) | (byte_at(9) << 8);
    prefix = 10;
  } else {
    RCSIM_REQUIRE(bytes.size() >= 12, "{}: truncated .npy preamble", name);
    header_len = byte_at(8) | (byte_at(9) << 8) | (byte_at(10) << 16) | (byte_at(11) << 24);
    prefix = 12;
  }
  RCSIM_REQUIRE(header_len <= kNpyHeaderBytesMax, "{}: .npy header of {} bytes exceeds {}", name,
                header_len, kNpyHeaderBytesMax);
  RCSIM_REQUIRE(bytes.size() >= prefix + header_len, "{}: truncated .npy header", name);
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + prefix, header_len);
  NpyHeader h = HeaderParser(text, name).parse();
  h.data_offset = prefix + header_len;
  RCSIM_REQUIRE(!h.fortran_order, "{}: Fortran-order .npy arrays are not supported", name);
  return h;
}

HostTensor decode_npy(std::span<const std::byte> bytes, DType dtype, std::string_view name) {
  const NpyHeader h = parse_npy_header(bytes, name);
  RCSIM_REQUIRE(descr_matches(h.descr, dtype),
                "{}: .npy dtype '{}' does not match the expected {} (stored as '{}')", name,
                h.descr, dtype_name(dtype), npy_descr(dtype));
  const int64_t elem = dtype_size_bytes(dtype);
  int64_t numel = 1;
  for (int64_t d : h.shape) {
    RCSIM_REQUIRE(d == 0 || numel <= limits::kHostTensorBytesMax / elem / d,
                  "{}: .npy shape overflows the {}-byte tensor limit", name,
                  limits::kHostTensorBytesMax);
    numel *= d;
  }
  const auto data_bytes = static_cast<std::size_t>(numel * elem);
  const std::size_t have = bytes.size() - h.data_offset;
  RCSIM_REQUIRE(have >= data_bytes, "{}: truncated .npy data: {} of {} bytes", name, have,
                data_bytes);
  RCSIM_REQUIRE(have == data_bytes, "{}: {} trailing bytes after the .npy data", name,
                have - data_bytes);
  HostTensor t(dtype, h.shape);
  if (data_bytes > 0) std::memcpy(t.data(), bytes.data() + h.data_offset, data_bytes);
  return t;
}

HostTensor read_npy(const std::filesystem::path& path, DType dtype) {
  const std::string name = path.string();
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  RCSIM_REQUIRE(!ec, "{}: cannot read: {}", name, ec.message());
  RCSIM_REQUIRE(size <= static_cast<std::uintmax_t>(limits::kHostTensorBytesMax) +
                            kNpyHeaderBytesMax + 12,
                "{}: file of {} bytes exceeds the tensor limit", name, size);
  std::ifstream in(path, std::ios::binary);
  RCSIM_REQUIRE(in.good(), "{}: cannot open", name);
  std::vector<std::byte> bytes(static_cast<std::size_t>(size));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  RCSIM_REQUIRE(in.gcount() == static_cast<std::streamsize>(size), "{}: short read", name);
  return decode_npy(bytes, dtype, name);
}

std::vector<std::byte> encode_npy(const TensorView& view) {
  RCSIM_REQUIRE(view.device == DeviceTag::kHost, "encode_npy needs a host view");
  std::string shape;  // "3, 4"; a 1-tuple needs its comma: "3,"
  for (int d = 0; d < view.rank; ++d) shape += fmt::format("{}{}", d ? ", " : "", view.size(d));
  if (view.rank == 1) shape += ",";
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}",
                                   npy_descr(view.dtype), shape);
  // Pad with spaces so the data starts 64-byte aligned, newline last (as NumPy does).
  const std::size_t unpadded = kMagicBytes + 4 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::vector<std::byte> out(kMagicBytes + 4);
  std::memcpy(out.data(), kMagic, kMagicBytes);
  out[6] = std::byte{1};
  out[7] = std::byte{0};
  out[8] = static_cast<std::byte>(header.size() & 0xFF);
  out[9] = static_cast<std::byte>(header.size() >> 8);
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  HostTensor packed(view.dtype,
                    std::vector<int64_t>(view.shape.begin(), view.shape.begin() + view.rank));
  copy_view(view, packed.view());
  out.insert(out.end(), packed.data(), packed.data() + packed.bytes());
  return out;
}

void write_npy(const std::filesystem::path& path, const TensorView& view) {
  const std::vector<std::byte> bytes = encode_npy(view);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  RCSIM_REQUIRE(out.good(), "{}: cannot create", path.string());
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  RCSIM_REQUIRE(out.good(), "{}: write failed", path.string());
}

}  // namespace rcsim::io
