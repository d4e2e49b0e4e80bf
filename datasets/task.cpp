// Class selection and balanced subsampling: for k classes and size n, the first n/k samples of each class in file order
// (the remainder going to the first classes), kept in file order. No randomness: the same files give the same task.
#include "datasets/task.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <stdexcept>

namespace ks {

std::vector<int> parse_classes(const std::string& text) {
  if (text.empty() || text == "all") return {};
  std::vector<int> classes;
  std::stringstream stream(text);
  std::string token;
  while (std::getline(stream, token, ',')) {
    size_t used = 0;
    int value = -1;
    try {
      value = std::stoi(token, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != token.size() || value < 0) throw std::invalid_argument("--classes: '" + token + "' is not a class id (e.g. 3,8)");
    classes.push_back(value);
  }
  if (std::set<int>(classes.begin(), classes.end()).size() != classes.size())
    throw std::invalid_argument("--classes: '" + text + "' lists a class twice");
  if (classes.size() < 2) throw std::invalid_argument("--classes: need at least two classes, got '" + text + "'");
  return classes;
}

static Dataset select(const Dataset& source, const std::vector<int>& classes, int64_t size, const std::string& split) {
  const auto k = static_cast<int64_t>(classes.size());
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(k));
  for (int64_t n = 0; n < source.size(); ++n) {
    const auto found = std::find(classes.begin(), classes.end(), source.labels[static_cast<size_t>(n)]);
    if (found != classes.end()) by_class[static_cast<size_t>(found - classes.begin())].push_back(n);
  }
  std::vector<int64_t> positions;
  for (int64_t c = 0; c < k; ++c) {
    const auto& members = by_class[static_cast<size_t>(c)];
    const std::string name = std::to_string(classes[static_cast<size_t>(c)]);
    if (members.empty()) throw std::runtime_error("class " + name + " has no images in the " + split + " set");
    int64_t want = static_cast<int64_t>(members.size());
    if (size > 0) {
      want = size / k + (c < size % k ? 1 : 0);
      if (want > static_cast<int64_t>(members.size()))
        throw std::runtime_error("class " + name + " has " + std::to_string(members.size()) + " images in the " + split +
                                 " set, but a balanced " + split + " size of " + std::to_string(size) + " needs " + std::to_string(want));
    }
    positions.insert(positions.end(), members.begin(), members.begin() + want);
  }
  std::sort(positions.begin(), positions.end());
  Dataset out = source.subset(positions);
  for (int& label : out.labels) label = static_cast<int>(std::find(classes.begin(), classes.end(), label) - classes.begin());
  out.class_names.clear();
  for (int c : classes)
    out.class_names.push_back(static_cast<size_t>(c) < source.class_names.size() ? source.class_names[static_cast<size_t>(c)] : std::to_string(c));
  return out;
}

Task make_task(const DataSplit& split, const TaskOptions& options) {
  std::vector<int> classes = options.classes;
  if (classes.empty()) {
    std::set<int> present(split.train.labels.begin(), split.train.labels.end());
    classes.assign(present.begin(), present.end());
  }
  for (int c : classes)
    if (static_cast<size_t>(c) >= std::max<size_t>(split.train.class_names.size(), 1) && !split.train.class_names.empty())
      throw std::runtime_error("class " + std::to_string(c) + " does not exist: this data set has classes 0.." +
                               std::to_string(split.train.class_names.size() - 1));
  // Train and test samples must have one shape: a network takes only one (found here, not after training).
  const auto sample_shape = [](const Dataset& data) { return Shape(data.inputs.shape().begin() + std::min<size_t>(1, data.inputs.shape().size()), data.inputs.shape().end()); };
  if (split.test.size() > 0 && split.train.size() > 0 && sample_shape(split.train) != sample_shape(split.test))
    throw std::runtime_error("training samples are " + shape_string(sample_shape(split.train)) + " but test samples are " + shape_string(sample_shape(split.test)) +
                             " (" + (split.train_files.empty() ? std::string("training data") : split.train_files.front()) + " vs " +
                             (split.test_files.empty() ? std::string("test data") : split.test_files.front()) + "); use images of one size, or --resize for folders");
  Task task;
  task.train = select(split.train, classes, options.train_size, "training");
  task.test = select(split.test, classes, options.test_size, "test");
  task.class_count = static_cast<int64_t>(classes.size());
  return task;
}

}  // namespace ks
