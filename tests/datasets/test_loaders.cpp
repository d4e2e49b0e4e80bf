// The IDX, CIFAR-10 and image-folder readers on tiny files of our own (broken ones included) and on the shared real data.
// Task selection is tested in test_task.cpp.
#include <doctest/doctest.h>
#include <zlib.h>

#include <fstream>

#include "datasets/loaders.h"
#include "datasets/npy.h"
#include "stb_image_write.h"
#include "tests/helpers.h"

namespace ks {

namespace fs = std::filesystem;

namespace {

// A fresh, empty folder of this test binary's own: one left by an earlier run whose process had the same id (ids are
// reused) would hold that run's files and change what the loaders see.
fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("kernelscope-test-" + std::to_string(getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<unsigned char> idx_bytes(uint32_t magic, std::vector<uint32_t> dims, const std::vector<unsigned char>& payload) {
  std::vector<unsigned char> out;
  auto put = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
  };
  put(magic);
  for (uint32_t d : dims) put(d);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

void write_file(const fs::path& path, const std::vector<unsigned char>& bytes, bool gzip = false) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
}

}  // namespace

TEST_CASE("IDX: gzip and raw files read alike; every malformation is an error naming the file") {
  const fs::path dir = scratch("idx");
  std::vector<unsigned char> pixels(3 * 2 * 2);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>(20 * i);
  write_file(dir / "img.gz", idx_bytes(0x803, {3, 2, 2}, pixels), true);
  write_file(dir / "img", idx_bytes(0x803, {3, 2, 2}, pixels));
  write_file(dir / "lab", idx_bytes(0x801, {3}, {7, 0, 9}));
  const Dataset gz = read_idx(dir / "img.gz", dir / "lab"), raw = read_idx(dir / "img", dir / "lab");
  CHECK(gz.inputs.shape() == Shape{3, 1, 2, 2});
  CHECK(test::bit_equal(gz.inputs, raw.inputs));
  CHECK(gz.inputs[5] == doctest::Approx(100.0 / 255.0));
  CHECK(gz.labels == std::vector<int>{7, 0, 9});

  write_file(dir / "bad_magic", idx_bytes(0x802, {3, 2, 2}, pixels));
  CHECK_THROWS_WITH(read_idx(dir / "bad_magic", dir / "lab"), doctest::Contains("bad_magic: wrong magic number"));
  write_file(dir / "short", idx_bytes(0x803, {4, 2, 2}, pixels));
  CHECK_THROWS_WITH(read_idx(dir / "short", dir / "lab"), doctest::Contains("short: truncated"));
  write_file(dir / "lab2", idx_bytes(0x801, {2}, {1, 2}));
  CHECK_THROWS_WITH(read_idx(dir / "img", dir / "lab2"), doctest::Contains("2 labels for 3 images"));
  CHECK_THROWS_WITH(read_idx(dir / "missing", dir / "lab"), doctest::Contains("missing: no such file"));
  // A gzip stream cut short.
  std::ifstream in(dir / "img.gz", std::ios::binary);
  std::vector<unsigned char> zipped((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  zipped.resize(zipped.size() / 2);
  write_file(dir / "cut.gz", zipped);
  CHECK_THROWS_WITH(read_idx(dir / "cut.gz", dir / "lab"), doctest::Contains("cut.gz"));
}

TEST_CASE("CIFAR-10: whole records only") {
  const fs::path dir = scratch("cifar");
  std::vector<unsigned char> records(2 * 3073, 128);
  records[0] = 3;
  records[3073] = 9;
  write_file(dir / "b.bin", records);
  const Dataset data = read_cifar10({dir / "b.bin", dir / "b.bin"});
  CHECK(data.size() == 4);
  CHECK(data.labels == std::vector<int>{3, 9, 3, 9});
  CHECK(data.source_indices == std::vector<int64_t>{0, 1, 2, 3});
  records.pop_back();
  write_file(dir / "cut.bin", records);
  CHECK_THROWS_WITH(read_cifar10({dir / "cut.bin"}), doctest::Contains("cut.bin: size 6145 bytes is not a whole number"));
}

TEST_CASE("image folders: one sub-folder per class, sizes must agree unless resized") {
  const fs::path dir = scratch("folder");
  for (const char* name : {"cat", "dog"}) fs::create_directories(dir / name);
  std::vector<unsigned char> rgb(4 * 4 * 3, 200), big(6 * 6 * 3, 50);
  stbi_write_png((dir / "cat" / "a.png").c_str(), 4, 4, 3, rgb.data(), 12);
  stbi_write_png((dir / "dog" / "b.png").c_str(), 4, 4, 3, rgb.data(), 12);
  Dataset data = read_image_folder(dir);
  CHECK(data.inputs.shape() == Shape{2, 3, 4, 4});
  CHECK(data.class_names == std::vector<std::string>{"cat", "dog"});
  CHECK(data.inputs[0] == doctest::Approx(200.0 / 255));
  stbi_write_png((dir / "dog" / "c.png").c_str(), 6, 6, 3, big.data(), 18);
  CHECK_THROWS_WITH(read_image_folder(dir), doctest::Contains("c.png: is 3x6x6"));
  data = read_image_folder(dir, 5);
  CHECK(data.inputs.shape() == Shape{3, 3, 5, 5});
  CHECK(data.inputs[3 * 25 * 2] == doctest::Approx(50.0 / 255));  // a constant image stays constant
}

TEST_CASE(".npy round trip, and truncated files are refused") {
  const fs::path dir = scratch("npy");
  Rng rng(1);
  const Tensor t = test::random_tensor({2, 3, 4}, rng);
  write_npy(dir / "t.npy", t);
  CHECK(test::bit_equal(read_npy(dir / "t.npy"), t));
  write_npy(dir / "i.npy", std::vector<int64_t>{5, -1, 7});
  CHECK(read_npy_int64(dir / "i.npy") == std::vector<int64_t>{5, -1, 7});
  fs::resize_file(dir / "t.npy", fs::file_size(dir / "t.npy") - 8);
  CHECK_THROWS_WITH(read_npy(dir / "t.npy"), doctest::Contains("truncated"));
  CHECK_THROWS_WITH(read_npy(dir / "i.npy"), doctest::Contains("dtype"));
}

TEST_CASE("the shared real data: MNIST, CIFAR-10 and Debian's Fashion-MNIST read with the documented counts") {
  const auto root = test::shared_datasets();
  if (root.empty()) {
    MESSAGE("skipped: ../shared/datasets is absent");
    return;
  }
  const DataSplit mnist = load_source({"mnist:" + (root / "mnist").string()});
  CHECK(mnist.train.size() == 10000);
  CHECK(mnist.test.size() == 10000);
  CHECK(mnist.train.inputs.shape() == Shape{10000, 1, 28, 28});
  const DataSplit cifar = load_source({"cifar10:" + (root / "cifar-10-batches-bin").string()});
  CHECK(cifar.train.size() == 5 * 1017);
  CHECK(cifar.test.size() == 1017);
  if (fs::exists("/usr/share/datasets/fashion-mnist")) {
    const DataSplit fashion = load_source({"fashion:"});
    CHECK(fashion.train.size() == 60000);
    CHECK(fashion.test.size() == 10000);
  } else {
    MESSAGE("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): skipped");
  }
}

}  // namespace ks
