// Spec parsing, layer assembly and seeded initialisation (Glorot-uniform, He-normal, NTK parameterisation).
// Initial values come from ks::Rng in state_dict order, so a seed gives the same θ_0 on every machine.
#include "nn/model.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "autodiff/random.h"

namespace ks {

InitKind parse_init(const std::string& name) {
  if (name == "glorot" || name == "glorot-uniform") return InitKind::glorot_uniform;
  if (name == "he" || name == "he-normal") return InitKind::he_normal;
  if (name == "ntk") return InitKind::ntk;
  throw std::invalid_argument("unknown initialisation '" + name + "' (use glorot-uniform, he-normal or ntk)");
}

std::string init_name(InitKind kind) {
  switch (kind) {
    case InitKind::glorot_uniform: return "glorot-uniform";
    case InitKind::he_normal: return "he-normal";
    case InitKind::ntk: return "ntk";
  }
  return "?";
}

namespace {

[[noreturn]] void bad_spec(const std::string& spec, const std::string& why) {
  throw std::invalid_argument("architecture '" + spec + "': " + why +
                              " (examples: mlp:512-512, mlp:256/tanh, vgg:16, resnet9:8, conv:32,32,M,64,64,M, conv:16,A,32,AG, conv:8,R,M,R16)");
}

int64_t parse_width(const std::string& spec, const std::string& token) {
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(token, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != token.size() || value < 1 || value > 100000) bad_spec(spec, "'" + token + "' is not a width");
  return value;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, separator)) parts.push_back(part);
  return parts;
}

}  // namespace

namespace {

// Long's counts, as his code makes them (approximate on purpose: they pick the widths his paper reports).
double long_mlp_count(double inputs, double width) { return inputs * width + 3.0 * (width + 1.0) * width + width + 1.0; }
double long_vgg_count(const Shape& sample, double width) {
  double channels = static_cast<double>(sample[0]), field = static_cast<double>(sample[1]), count = 0.0;
  for (int block = 0; block < 2; ++block) {
    const double next = block == 0 ? width : 2.0 * channels;
    count += channels * next * 10.0 + next * next * 10.0;  // two 3x3 convolutions, (1 + 3·3) per in·out pair
    channels = next;
    field /= 2.0;
  }
  return count + field * field * channels + 1.0;
}

}  // namespace

std::string long_sized_spec(const std::string& family, const Shape& sample_shape, int64_t parameters) {
  if (parameters < 100 || parameters > 100000000)
    throw std::invalid_argument("--num-parameters " + std::to_string(parameters) + " is outside 100..10^8");
  if (family != "mlp" && family != "vgg")
    throw std::invalid_argument("--num-parameters sizes --arch mlp or --arch vgg (Long's architectures), not '" + family + "'");
  if (family == "vgg" && (sample_shape.size() != 3 || sample_shape[1] != sample_shape[2]))
    throw std::invalid_argument("--arch vgg --num-parameters needs square images (C, H, W), got " + shape_string(sample_shape));
  const double inputs = static_cast<double>(shape_numel(sample_shape)), target = static_cast<double>(parameters);
  int64_t width = 4;
  if (family == "mlp") {
    do ++width; while (long_mlp_count(inputs, static_cast<double>(width)) < target);
    const std::string w = std::to_string(width);
    return "mlp:" + w + "-" + w + "-" + w + "-" + w;
  }
  while (long_vgg_count(sample_shape, static_cast<double>(width)) < target) ++width;
  return "vgg:" + std::to_string(width);
}

namespace {

// The spec's "/tanh" or "/softplus" suffix (ReLU without one), removed from body.
ActivationKind take_activation(const std::string& spec, std::string& body) {
  const size_t slash = body.find('/');
  if (slash == std::string::npos) return ActivationKind::relu;
  const std::string name = body.substr(slash + 1);
  body = body.substr(0, slash);
  if (name == "relu") return ActivationKind::relu;
  if (name == "tanh") return ActivationKind::tanh;
  if (name == "softplus") return ActivationKind::softplus;
  bad_spec(spec, "unknown activation '" + name + "' (relu, tanh or softplus)");
}

}  // namespace

std::unique_ptr<Sequential> build_model(const ModelOptions& options) {
  const std::string& spec = options.spec;
  const size_t colon = spec.find(':');
  if (colon == std::string::npos) bad_spec(spec, "missing ':'");
  const std::string family = spec.substr(0, colon);
  std::string body = spec.substr(colon + 1);
  const ActivationKind activation = take_activation(spec, body);
  if (options.outputs < 1) bad_spec(spec, "needs at least one output");
  if (body.empty() && family != "mlp") bad_spec(spec, "names no layers");
  const char separator = family == "mlp" ? '-' : ',';
  if (!body.empty() && (body.front() == separator || body.back() == separator || body.find(std::string(2, separator)) != std::string::npos))
    bad_spec(spec, "has an empty layer between separators");
  if (family == "mlp" && body.empty()) bad_spec(spec, "names no hidden width (a linear model is not an mlp)");
  const bool ntk = options.init == InitKind::ntk;
  auto multiplier = [ntk](int64_t fan_in) { return ntk ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 1.0; };

  auto model = std::make_unique<Sequential>();
  int64_t features = shape_numel(options.sample_shape);
  if (family == "mlp") {
    model->add(make_flatten());
    for (const std::string& token : body.empty() ? std::vector<std::string>{} : split(body, '-')) {
      const int64_t width = parse_width(spec, token);
      model->add(make_dense(DenseOptions{features, width, true, multiplier(features)}));
      model->add(make_activation(activation));
      features = width;
    }
  } else if (family == "vgg" || family == "conv" || family == "resnet9") {
    if (family == "vgg") {
      const int64_t w = parse_width(spec, body);
      body = std::to_string(w) + "," + std::to_string(w) + ",M," + std::to_string(2 * w) + "," + std::to_string(2 * w) + ",M";
    }
    if (family == "resnet9") {  // the fast CIFAR-10 ResNet's layout at base width W (README: "Residual nets")
      const int64_t w = parse_width(spec, body);
      auto width = [w](int64_t k) { return std::to_string(k * w); };
      body = width(1) + "," + width(2) + ",M,R," + width(4) + ",M," + width(8) + ",M,R,AG";
    }
    if (options.sample_shape.size() != 3) bad_spec(spec, "convolutional nets need image inputs (C, H, W), got " + shape_string(options.sample_shape));
    int64_t channels = options.sample_shape[0], height = options.sample_shape[1], width = options.sample_shape[2];
    for (const std::string& token : split(body, ',')) {
      if (token == "M") {
        if (height < 2 || width < 2) bad_spec(spec, "a max-pool would shrink the image below 1x1");
        model->add(make_max_pool(PoolOptions{2, 2}));
        height /= 2;
        width /= 2;
      } else if (token == "AG") {  // global average pooling: one value per channel
        if (height != width) bad_spec(spec, "global average pooling needs a square image, got " + std::to_string(height) + "x" + std::to_string(width));
        model->add(make_average_pool(AveragePoolOptions{height, height, true}));
        height = width = 1;
      } else if (token[0] == 'A') {  // A: 2x2 average pooling; Ak: k x k, stride k
        const int64_t k = token.size() == 1 ? 2 : parse_width(spec, token.substr(1));
        if (height < k || width < k) bad_spec(spec, "a " + token + " average pool needs at least " + std::to_string(k) + "x" + std::to_string(k) + " pixels");
        model->add(make_average_pool(AveragePoolOptions{k, k, false}));
        height = (height - k) / k + 1;
        width = (width - k) / k + 1;
      } else if (token[0] == 'R') {  // R: a residual block keeping the channels; Rk: to k channels, with a 1x1 projection
        const int64_t out = token.size() == 1 ? channels : parse_width(spec, token.substr(1));
        if (activation != ActivationKind::relu) bad_spec(spec, "residual blocks use ReLU");
        add_residual_block(*model, ResidualBlockOptions{channels, out, 1, true, multiplier(channels * 9), multiplier(out * 9), multiplier(channels)});
        channels = out;
      } else {
        const int64_t out = parse_width(spec, token);
        model->add(make_conv2d(Conv2dLayerOptions{channels, out, 3, 1, 1, true, multiplier(channels * 9)}));
        model->add(make_activation(activation));
        channels = out;
      }
    }
    model->add(make_flatten());
    features = channels * height * width;
  } else {
    bad_spec(spec, "unknown family '" + family + "'");
  }
  model->add(make_dense(DenseOptions{features, options.outputs, true, multiplier(features)}));
  return model;
}

Parameters initial_parameters(const Sequential& model, const ModelOptions& options) {
  Parameters theta;
  for (const Shape& shape : model.parameter_shapes()) theta.emplace_back(shape);
  Rng rng(options.seed);
  for (size_t l = 0; l < model.layers().size(); ++l)
    if (model.layers()[l]->parameterised()) model.layers()[l]->initialise(&theta[static_cast<size_t>(model.first_parameter(l))], options.init, rng);
  return theta;
}

}  // namespace ks
