// NumPy .npy files (format 1.0, little-endian, C order): float64 and int64 arrays in and out.
// Nothing else: no pickles, no Fortran order, no other dtypes; reading anything else is a clear error naming the file.
#pragma once

#include <filesystem>
#include <vector>

#include "autodiff/tensor.h"

namespace ks {

void write_npy(const std::filesystem::path& path, const Tensor& array);
void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& values, const Shape& shape);
void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& values);  // 1-D
void write_npy(const std::filesystem::path& path, const std::vector<double>& values);   // 1-D

Tensor read_npy(const std::filesystem::path& path);                // '<f8'
std::vector<int64_t> read_npy_int64(const std::filesystem::path& path, Shape* shape = nullptr);  // '<i8'

}  // namespace ks
