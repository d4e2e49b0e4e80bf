// .npy reading and writing: a 'NUMPY' magic, a Python-dict header padded to 64 bytes, then raw little-endian data.
// Only '<f8' and '<i8' in C order; tensors above rank 4 cannot be represented and are refused on reading.
#include "datasets/npy.h"

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace ks {

namespace {

void write_raw(const std::filesystem::path& path, const char* descr, const Shape& shape, const void* data, size_t bytes) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";  // Python's one-element tuple
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t unpadded = 10 + header.size() + 1;
  header += std::string((64 - unpadded % 64) % 64, ' ') + "\n";
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write " + path.string());
  const uint16_t header_length = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.write(reinterpret_cast<const char*>(&header_length), 2);
  out << header;
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  if (!out) throw std::runtime_error("write failed for " + path.string());
}

// The extents in a header's shape tuple, each a non-negative integer, their product checked against overflow.
Shape parse_shape(const std::filesystem::path& path, const std::string& dims) {
  Shape shape;
  std::stringstream items(dims);
  std::string item;
  int64_t total = 1;
  while (std::getline(items, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \tL") + 1);
    if (item.empty()) continue;  // the trailing comma of a 1-tuple
    if (item.size() > 15 || item.find_first_not_of("0123456789") != std::string::npos)
      throw std::runtime_error(path.string() + ": shape extent '" + item + "' is not a non-negative integer");
    const int64_t extent = std::stoll(item);
    if (extent > 0 && total > (int64_t{1} << 50) / extent)
      throw std::runtime_error(path.string() + ": shape (" + dims + ") holds more values than any file can");
    total *= extent;
    shape.push_back(extent);
  }
  return shape;
}

std::vector<char> read_raw(const std::filesystem::path& path, const std::string& expected_descr, Shape& shape) {
  if (std::filesystem::is_directory(path)) throw std::runtime_error(path.string() + ": is a directory, not a .npy file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open (missing file?)");
  const auto file_size = static_cast<int64_t>(std::filesystem::file_size(path));
  char magic[10];
  in.read(magic, 10);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw std::runtime_error(path.string() + ": not a .npy file (bad magic)");
  int64_t header_length = 0, offset = 10;
  if (magic[6] == 1) {
    header_length = static_cast<uint8_t>(magic[8]) | (static_cast<int64_t>(static_cast<uint8_t>(magic[9])) << 8);
  } else {
    char more[2];
    in.read(more, 2);
    offset = 12;
    header_length = static_cast<uint8_t>(magic[8]) | (static_cast<int64_t>(static_cast<uint8_t>(magic[9])) << 8) |
                    (static_cast<int64_t>(static_cast<uint8_t>(more[0])) << 16) | (static_cast<int64_t>(static_cast<uint8_t>(more[1])) << 24);
  }
  if (header_length > file_size - offset) throw std::runtime_error(path.string() + ": truncated header (" + std::to_string(header_length) + " bytes announced)");
  std::string header(static_cast<size_t>(header_length), '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_length));
  if (!in) throw std::runtime_error(path.string() + ": truncated header");
  std::smatch match;
  if (!std::regex_search(header, match, std::regex("'descr':\\s*'([^']*)'")) || match[1] != expected_descr)
    throw std::runtime_error(path.string() + ": dtype must be " + expected_descr + ", header is " + header);
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True")))
    throw std::runtime_error(path.string() + ": Fortran order is not supported; save with C order");
  if (!std::regex_search(header, match, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    throw std::runtime_error(path.string() + ": no shape in header");
  shape = parse_shape(path, match[1]);
  const int64_t bytes = shape_numel(shape) * 8, available = file_size - offset - header_length;
  if (bytes != available)  // checked before allocating: a header cannot make the loader reserve what the file does not hold
    throw std::runtime_error(path.string() + ": shape " + shape_string(shape) + " needs " + std::to_string(bytes) + " bytes of data, the file holds " +
                             std::to_string(available) + " (truncated or damaged)");
  std::vector<char> data(static_cast<size_t>(bytes));
  in.read(data.data(), static_cast<std::streamsize>(bytes));
  if (static_cast<int64_t>(in.gcount()) != bytes) throw std::runtime_error(path.string() + ": truncated data");
  return data;
}

}  // namespace

void write_npy(const std::filesystem::path& path, const Tensor& array) {
  write_raw(path, "<f8", array.shape(), array.data(), static_cast<size_t>(array.numel()) * 8);
}

void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& values, const Shape& shape) {
  if (shape_numel(shape) != static_cast<int64_t>(values.size()))
    throw ShapeError("write_npy: shape " + shape_string(shape) + " does not hold " + std::to_string(values.size()) + " values");
  write_raw(path, "<i8", shape, values.data(), values.size() * 8);
}

void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& values) {
  write_npy(path, values, {static_cast<int64_t>(values.size())});
}

void write_npy(const std::filesystem::path& path, const std::vector<double>& values) {
  write_raw(path, "<f8", {static_cast<int64_t>(values.size())}, values.data(), values.size() * 8);
}

Tensor read_npy(const std::filesystem::path& path) {
  Shape shape;
  std::vector<char> raw = read_raw(path, "<f8", shape);
  if (shape.empty()) shape = {1};
  if (shape.size() > 4) throw std::runtime_error(path.string() + ": rank " + std::to_string(shape.size()) + " is above 4");
  std::vector<double> values(raw.size() / 8);
  std::memcpy(values.data(), raw.data(), raw.size());
  return Tensor(shape, std::move(values));
}

std::vector<int64_t> read_npy_int64(const std::filesystem::path& path, Shape* shape) {
  Shape local;
  std::vector<char> raw = read_raw(path, "<i8", local);
  if (shape) *shape = local;
  std::vector<int64_t> values(raw.size() / 8);
  std::memcpy(values.data(), raw.data(), raw.size());
  return values;
}

}  // namespace ks
