// Readers for real image data: IDX (MNIST, Fashion-MNIST, KMNIST; gzip or raw), CIFAR-10 binary batches, image folders.
// They return every image in file order with pixels scaled to [0, 1]; choosing classes and sizes is task.h's job.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace ks {

// Any error (missing file, wrong magic, truncated data, count mismatch) throws std::runtime_error naming the file.
Dataset read_idx(const std::filesystem::path& images, const std::filesystem::path& labels);
Dataset read_cifar10(const std::vector<std::filesystem::path>& files);  // concatenated in the order given
// One sub-folder per class (sorted by name); PNG/JPEG/BMP; all one size unless resize > 0 (then resized to resize x resize).
Dataset read_image_folder(const std::filesystem::path& folder, int64_t resize = 0);

// A training and a test set from a source string: mnist:DIR, fashion:DIR, cifar10:DIR, folder:DIR, toy:moons|spirals.
struct DataSplit {
  Dataset train, test;
  std::vector<std::string> train_files, test_files;  // what was read, for config.json
};
struct SourceOptions {
  std::string source;
  std::filesystem::path train_images, train_labels, test_images, test_labels;  // optional IDX overrides
  int64_t resize = 0;         // folder: resize images
  int64_t toy_points = 400;   // toy: points per split
  uint64_t seed = 0;          // toy: the sets' seed
};
DataSplit load_source(const SourceOptions& options);

}  // namespace ks
