// IDX, CIFAR-10 and image-folder readers, and the source strings that pick one.
// No class selection or subsampling here; stb_image decodes pictures, zlib reads gzip and raw IDX alike.
#include "datasets/loaders.h"

#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include "stb_image.h"

namespace ks {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const fs::path& file, const std::string& what) { throw std::runtime_error(file.string() + ": " + what); }

// The whole (possibly gzipped) file; gzread passes uncompressed files through unchanged.
std::vector<unsigned char> read_maybe_gzip(const fs::path& file) {
  if (!fs::exists(file)) fail(file, "no such file");
  if (fs::is_directory(file)) fail(file, "is a directory; name a file");
  gzFile handle = gzopen(file.c_str(), "rb");
  if (!handle) fail(file, "cannot open");
  std::vector<unsigned char> bytes;
  unsigned char buffer[1 << 16];
  int got;
  while ((got = gzread(handle, buffer, sizeof buffer)) > 0) bytes.insert(bytes.end(), buffer, buffer + got);
  int error = Z_OK;
  const char* message = gzerror(handle, &error);
  const std::string text = message ? message : "";
  gzclose(handle);
  // Z_BUF_ERROR is a stream that ends early: the data, its CRC or its length is cut off.
  if (got < 0 || error != Z_OK) fail(file, "corrupt or truncated gzip data (" + text + "); download or copy the file again");
  return bytes;
}

uint32_t big_endian(const std::vector<unsigned char>& bytes, size_t offset) {
  return (uint32_t{bytes[offset]} << 24) | (uint32_t{bytes[offset + 1]} << 16) | (uint32_t{bytes[offset + 2]} << 8) | bytes[offset + 3];
}

}  // namespace

Dataset read_idx(const fs::path& images, const fs::path& labels) {
  const std::vector<unsigned char> image_bytes = read_maybe_gzip(images), label_bytes = read_maybe_gzip(labels);
  if (image_bytes.size() < 16) fail(images, "truncated: too short for an IDX image header");
  if (big_endian(image_bytes, 0) != 0x00000803)
    fail(images, "wrong magic number " + std::to_string(big_endian(image_bytes, 0)) + " (an IDX image file has 2051)");
  if (label_bytes.size() < 8) fail(labels, "truncated: too short for an IDX label header");
  if (big_endian(label_bytes, 0) != 0x00000801)
    fail(labels, "wrong magic number " + std::to_string(big_endian(label_bytes, 0)) + " (an IDX label file has 2049)");
  const int64_t count = big_endian(image_bytes, 4), rows = big_endian(image_bytes, 8), cols = big_endian(image_bytes, 12);
  const int64_t label_count = big_endian(label_bytes, 4);
  if (rows < 1 || cols < 1 || rows > 4096 || cols > 4096)
    fail(images, "implausible image size " + std::to_string(rows) + "x" + std::to_string(cols));
  const int64_t expected = 16 + count * rows * cols;
  if (static_cast<int64_t>(image_bytes.size()) != expected)
    fail(images, "truncated or oversized: header says " + std::to_string(count) + " images of " + std::to_string(rows) + "x" +
                     std::to_string(cols) + " (" + std::to_string(expected) + " bytes), file has " + std::to_string(image_bytes.size()));
  if (static_cast<int64_t>(label_bytes.size()) != 8 + label_count)
    fail(labels, "truncated or oversized: header says " + std::to_string(label_count) + " labels, file has " +
                     std::to_string(label_bytes.size() - 8) + " bytes of labels");
  if (label_count != count)
    fail(labels, std::to_string(label_count) + " labels for " + std::to_string(count) + " images in " + images.string());
  Dataset data;
  data.inputs = Tensor({count, 1, rows, cols});
  for (int64_t i = 0; i < count * rows * cols; ++i) data.inputs[i] = image_bytes[static_cast<size_t>(16 + i)] / 255.0;
  for (int64_t n = 0; n < count; ++n) {
    const int label = label_bytes[static_cast<size_t>(8 + n)];
    if (label > 9) fail(labels, "label " + std::to_string(label) + " at position " + std::to_string(n) + " is not a digit class");
    data.labels.push_back(label);
    data.source_indices.push_back(n);
  }
  for (int c = 0; c < 10; ++c) data.class_names.push_back(std::to_string(c));
  return data;
}

Dataset read_cifar10(const std::vector<fs::path>& files) {
  constexpr int64_t record = 1 + 3 * 32 * 32;
  std::vector<std::vector<unsigned char>> contents;
  int64_t total = 0;
  for (const fs::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) fail(file, "no such file or cannot open");
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.empty() || bytes.size() % record != 0)
      fail(file, "size " + std::to_string(bytes.size()) + " bytes is not a whole number of 3,073-byte CIFAR-10 records (truncated?)");
    total += static_cast<int64_t>(bytes.size()) / record;
    contents.push_back(std::move(bytes));
  }
  Dataset data;
  data.inputs = Tensor({total, 3, 32, 32});
  int64_t n = 0;
  for (size_t f = 0; f < contents.size(); ++f) {
    const auto& bytes = contents[f];
    for (size_t offset = 0; offset < bytes.size(); offset += record, ++n) {
      if (bytes[offset] > 9) fail(files[f], "label " + std::to_string(bytes[offset]) + " at record " + std::to_string(offset / record));
      data.labels.push_back(bytes[offset]);
      data.source_indices.push_back(n);
      for (int64_t i = 0; i < record - 1; ++i) data.inputs[n * (record - 1) + i] = bytes[offset + 1 + static_cast<size_t>(i)] / 255.0;
    }
  }
  data.class_names = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return data;
}

namespace {

// Bilinear resize of one (C, H, W) image, align-corners off (pixel centres), as most image libraries do.
std::vector<double> resize_image(const std::vector<double>& image, int64_t channels, int64_t height, int64_t width, int64_t size) {
  std::vector<double> out(static_cast<size_t>(channels * size * size));
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < size; ++i)
      for (int64_t j = 0; j < size; ++j) {
        const double y = std::clamp((i + 0.5) * height / size - 0.5, 0.0, height - 1.0);
        const double x = std::clamp((j + 0.5) * width / size - 0.5, 0.0, width - 1.0);
        const int64_t y0 = static_cast<int64_t>(y), x0 = static_cast<int64_t>(x);
        const int64_t y1 = std::min(y0 + 1, height - 1), x1 = std::min(x0 + 1, width - 1);
        const double dy = y - y0, dx = x - x0;
        auto at = [&](int64_t yy, int64_t xx) { return image[static_cast<size_t>((c * height + yy) * width + xx)]; };
        out[static_cast<size_t>((c * size + i) * size + j)] =
            (1 - dy) * ((1 - dx) * at(y0, x0) + dx * at(y0, x1)) + dy * ((1 - dx) * at(y1, x0) + dx * at(y1, x1));
      }
  return out;
}

}  // namespace

Dataset read_image_folder(const fs::path& folder, int64_t resize) {
  if (!fs::is_directory(folder)) fail(folder, "not a directory (expected one sub-folder per class)");
  std::vector<fs::path> class_dirs;
  for (const auto& entry : fs::directory_iterator(folder))
    if (entry.is_directory()) class_dirs.push_back(entry.path());
  std::sort(class_dirs.begin(), class_dirs.end());
  if (class_dirs.size() < 2) fail(folder, "needs at least two class sub-folders, found " + std::to_string(class_dirs.size()));
  Dataset data;
  std::vector<double> pixels;
  int64_t channels = -1, height = -1, width = -1, n = 0;
  for (size_t label = 0; label < class_dirs.size(); ++label) {
    data.class_names.push_back(class_dirs[label].filename().string());
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(class_dirs[label])) {
      std::string extension = entry.path().extension().string();
      std::transform(extension.begin(), extension.end(), extension.begin(), ::tolower);
      if (extension == ".png" || extension == ".jpg" || extension == ".jpeg" || extension == ".bmp") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) fail(class_dirs[label], "class folder holds no PNG, JPEG or BMP image");
    for (const fs::path& file : files) {
      int w = 0, h = 0, c = 0;
      unsigned char* raw = stbi_load(file.c_str(), &w, &h, &c, 0);
      if (!raw) fail(file, std::string("cannot decode image: ") + stbi_failure_reason());
      const int64_t kept = c >= 3 ? 3 : 1;  // drop alpha; grey+alpha keeps grey
      std::vector<double> image(static_cast<size_t>(kept * h * w));
      for (int64_t ch = 0; ch < kept; ++ch)
        for (int64_t p = 0; p < int64_t{h} * w; ++p) image[static_cast<size_t>(ch * h * w + p)] = raw[p * c + ch] / 255.0;
      stbi_image_free(raw);
      int64_t out_h = h, out_w = w;
      if (resize > 0) {
        image = resize_image(image, kept, h, w, resize);
        out_h = out_w = resize;
      }
      if (channels < 0) {
        channels = kept;
        height = out_h;
        width = out_w;
      } else if (kept != channels || out_h != height || out_w != width) {
        fail(file, "is " + std::to_string(kept) + "x" + std::to_string(out_h) + "x" + std::to_string(out_w) + " but earlier images are " +
                       std::to_string(channels) + "x" + std::to_string(height) + "x" + std::to_string(width) +
                       "; give a resize option or convert the images");
      }
      pixels.insert(pixels.end(), image.begin(), image.end());
      data.labels.push_back(static_cast<int>(label));
      data.source_indices.push_back(n++);
    }
  }
  data.inputs = Tensor({n, channels, height, width}, std::move(pixels));
  return data;
}

namespace {

// The first file in `dir` whose name matches one of the candidates exactly, else one that starts with a prefix and contains a marker.
fs::path find_idx(const fs::path& dir, const std::vector<std::string>& names, const std::string& prefix, const std::string& marker) {
  for (const std::string& name : names)
    if (fs::exists(dir / name)) return dir / name;
  std::vector<fs::path> matches;
  if (fs::is_directory(dir))
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(prefix, 0) == 0 && name.find(marker) != std::string::npos) matches.push_back(entry.path());
    }
  std::sort(matches.begin(), matches.end());
  if (matches.empty())
    throw std::runtime_error(dir.string() + ": no " + prefix + "*" + marker + "* file (expected e.g. " + names.front() +
                             "; name files with --train-images/--train-labels/--test-images/--test-labels)");
  return matches.front();
}

}  // namespace

DataSplit load_source(const SourceOptions& options) {
  const size_t colon = options.source.find(':');
  const std::string kind = options.source.substr(0, colon);
  std::string location = colon == std::string::npos ? "" : options.source.substr(colon + 1);
  DataSplit split;
  const bool idx = kind == "mnist" || kind == "fashion" || kind == "kmnist";
  if (!idx && !(options.train_images.empty() && options.train_labels.empty() && options.test_images.empty() && options.test_labels.empty()))
    throw std::runtime_error("--train-images, --train-labels, --test-images and --test-labels name IDX files: they apply to mnist:, fashion: and kmnist: "
                             "sources, not to " + kind + ":");
  if (idx) {
    if (location.empty() && kind == "fashion") location = "/usr/share/datasets/fashion-mnist";
    if (location.empty()) throw std::runtime_error("--data " + kind + ":DIR needs the directory holding the IDX files");
    const fs::path dir(location);
    if (!fs::is_directory(dir)) throw std::runtime_error(dir.string() + ": no such directory");
    auto pick = [&](const fs::path& given, const std::string& stem, const std::string& prefix, const std::string& marker) {
      return !given.empty() ? given : find_idx(dir, {stem + ".gz", stem}, prefix, marker);
    };
    const fs::path train_images = pick(options.train_images, "train-images-idx3-ubyte", "train", "images-idx3-ubyte");
    const fs::path train_labels = pick(options.train_labels, "train-labels-idx1-ubyte", "train", "labels-idx1-ubyte");
    const fs::path test_images = pick(options.test_images, "t10k-images-idx3-ubyte", "t10k", "images-idx3-ubyte");
    const fs::path test_labels = pick(options.test_labels, "t10k-labels-idx1-ubyte", "t10k", "labels-idx1-ubyte");
    split.train = read_idx(train_images, train_labels);
    split.test = read_idx(test_images, test_labels);
    split.train_files = {train_images.string(), train_labels.string()};
    split.test_files = {test_images.string(), test_labels.string()};
    if (kind == "fashion")
      for (Dataset* d : {&split.train, &split.test})
        d->class_names = {"t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"};
  } else if (kind == "cifar10") {
    const fs::path dir(location);
    if (!fs::is_directory(dir)) throw std::runtime_error((location.empty() ? std::string("--data cifar10:DIR") : location) + ": no such directory");
    std::vector<fs::path> train_files;
    for (int b = 1; b <= 5; ++b)
      if (fs::exists(dir / ("data_batch_" + std::to_string(b) + ".bin"))) train_files.push_back(dir / ("data_batch_" + std::to_string(b) + ".bin"));
    if (train_files.empty()) throw std::runtime_error(dir.string() + ": no data_batch_*.bin files (CIFAR-10 binary version)");
    split.train = read_cifar10(train_files);
    split.test = read_cifar10({dir / "test_batch.bin"});
    for (const auto& f : train_files) split.train_files.push_back(f.string());
    split.test_files = {(dir / "test_batch.bin").string()};
  } else if (kind == "folder") {
    const fs::path dir(location);
    split.train = read_image_folder(dir / "train", options.resize);
    split.test = read_image_folder(dir / "test", options.resize);
    if (split.train.class_names != split.test.class_names)
      throw std::runtime_error(dir.string() + ": train/ and test/ have different class folders");
    split.train_files = {(dir / "train").string()};
    split.test_files = {(dir / "test").string()};
  } else if (kind == "toy") {
    split.train = make_toy_dataset({location, options.toy_points, 0.1, options.seed});
    split.test = make_toy_dataset({location, options.toy_points, 0.1, options.seed + 1000003});
  } else {
    throw std::runtime_error("unknown data source '" + options.source + "' (use mnist:DIR, fashion:DIR, cifar10:DIR, folder:DIR or toy:moons|spirals)");
  }
  return split;
}

}  // namespace ks
