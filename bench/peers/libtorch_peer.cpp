// LibTorch peer for bench/run: the same nets, θ_0, inputs, batches and threads as bench_compare, in LibTorch 1.13 float64.
// Per-sample gradients come from a loop of torch::autograd::grad (LibTorch has no vmap); built only with KERNELSCOPE_PEERS.
//
//   bench_peer_libtorch WORKDIR CASE TASK [REPEATS]    TASK epoch | jacobian | gram:N; other tasks print nothing
//
// Before a time is reported the result is checked against kernelscope's (θ_T of the run, the Jacobian's first rows, the
// Gram): max |ours − theirs| / max |ours| must be at most 1e-10, else the line says "mismatch" and carries no time.
#include <omp.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bench/common.h"
#include "datasets/npy.h"

namespace fs = std::filesystem;

namespace {

torch::Tensor to_torch(const ks::Tensor& array) {
  std::vector<int64_t> shape(array.shape().begin(), array.shape().end());
  return torch::from_blob(const_cast<double*>(array.data()), shape, torch::kFloat64).clone();
}

torch::Tensor read_array(const fs::path& path) { return to_torch(ks::read_npy(path)); }

torch::Tensor read_int64(const fs::path& path) {
  ks::Shape shape;
  std::vector<int64_t> values = ks::read_npy_int64(path, &shape);
  return torch::from_blob(values.data(), {static_cast<int64_t>(values.size())}, torch::kInt64).clone();
}

// kernelscope's spec grammar for the two nets benchmarked: mlp:W-W-… and vgg:W, ReLU, one output; the module indices
// give the same state_dict names as kernelscope's run directories.
torch::nn::Sequential build_net(const std::string& spec, const std::vector<int64_t>& sample) {
  torch::nn::Sequential net;
  const std::string family = spec.substr(0, spec.find(':'));
  const std::string body = spec.substr(spec.find(':') + 1);
  if (family == "mlp") {
    net->push_back(torch::nn::Flatten());
    int64_t features = 1;
    for (int64_t d : sample) features *= d;
    std::stringstream widths(body);
    for (std::string token; std::getline(widths, token, '-');) {
      const int64_t width = std::stoll(token);
      net->push_back(torch::nn::Linear(features, width));
      net->push_back(torch::nn::ReLU());
      features = width;
    }
    net->push_back(torch::nn::Linear(features, 1));
  } else if (family == "vgg") {
    const int64_t w = std::stoll(body);
    int64_t channels = sample[0], height = sample[1], width = sample[2];
    for (int64_t out : {w, w, int64_t{-1}, 2 * w, 2 * w, int64_t{-1}}) {
      if (out < 0) {
        net->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
        height /= 2;
        width /= 2;
        continue;
      }
      net->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, out, 3).padding(1)));
      net->push_back(torch::nn::ReLU());
      channels = out;
    }
    net->push_back(torch::nn::Flatten());
    net->push_back(torch::nn::Linear(channels * height * width, 1));
  } else {
    throw std::invalid_argument("libtorch peer: unsupported spec " + spec);
  }
  net->to(torch::kFloat64);
  return net;
}

void load_parameters(torch::nn::Sequential& net, const fs::path& directory) {
  torch::NoGradGuard no_grad;
  for (auto& named : net->named_parameters()) {
    const fs::path file = directory / (named.key() + ".npy");
    torch::Tensor value = read_array(file);
    if (value.sizes() != named.value().sizes()) throw std::runtime_error("libtorch peer: " + file.string() + " has the wrong shape");
    named.value().copy_(value);
  }
}

double relative_difference(const torch::Tensor& ours, const torch::Tensor& theirs) {
  return (theirs - ours).abs().max().item<double>() / ours.abs().max().item<double>();
}

// Per-sample gradient rows of the scalar output, one autograd::grad call per sample: (N, P).
torch::Tensor jacobian_rows(torch::nn::Sequential& net, const torch::Tensor& inputs) {
  const std::vector<torch::Tensor> parameters = net->parameters();
  int64_t P = 0;
  for (const auto& p : parameters) P += p.numel();
  torch::Tensor jacobian = torch::empty({inputs.size(0), P}, torch::kFloat64);
  for (int64_t n = 0; n < inputs.size(0); ++n) {
    torch::Tensor output = net->forward(inputs.narrow(0, n, 1)).sum();
    const std::vector<torch::Tensor> gradients = torch::autograd::grad({output}, parameters);
    int64_t offset = 0;
    for (const auto& g : gradients) {
      jacobian[n].narrow(0, offset, g.numel()).copy_(g.reshape({-1}));
      offset += g.numel();
    }
  }
  return jacobian;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 4) {
      std::cerr << "usage: bench_peer_libtorch WORKDIR CASE TASK [REPEATS]\n";
      return 2;
    }
    const fs::path directory = fs::path(argv[1]) / argv[2];
    const std::string task = argv[3];
    const int repeats = argc > 4 ? std::atoi(argv[4]) : 3;
    if (task != "epoch" && task != "jacobian" && task.rfind("gram:", 0) != 0) return 0;
    torch::set_num_threads(omp_get_max_threads());
    const nlohmann::json info = nlohmann::json::parse(std::ifstream(directory / "case.json"));
    const torch::Tensor pool = read_array(directory / "inputs.npy");
    std::vector<int64_t> sample(pool.sizes().begin() + 1, pool.sizes().end());
    torch::nn::Sequential net = build_net(info["spec"].get<std::string>(), sample);
    load_parameters(net, directory / "run" / "theta0");
    nlohmann::json result{{"case", argv[2]}, {"task", task}, {"peer", "libtorch"}, {"threads", torch::get_num_threads()}};
    ks::bench::Timing timing{};
    double difference = 0.0;

    if (task == "epoch") {
      // The run's own trajectory: batches and learning rates as recorded, logistic loss on labels ±1.
      const int64_t train = info["train"].get<int64_t>();
      const torch::Tensor inputs = pool.narrow(0, 0, train);
      const torch::Tensor signs = read_int64(directory / "train_labels.npy").to(torch::kFloat64) * 2.0 - 1.0;
      const torch::Tensor offsets = read_int64(directory / "run" / "trajectory" / "batch_offsets.npy");
      const torch::Tensor positions = read_int64(directory / "run" / "trajectory" / "batch_positions.npy");
      const torch::Tensor rates = read_array(directory / "run" / "trajectory" / "learning_rates.npy");
      const std::vector<torch::Tensor> parameters = net->parameters();
      timing = ks::bench::time_runs(repeats, [&] {
        load_parameters(net, directory / "run" / "theta0");
        for (int64_t s = 0; s + 1 < offsets.size(0); ++s) {
          const int64_t first = offsets[s].item<int64_t>(), last = offsets[s + 1].item<int64_t>();
          const torch::Tensor batch = positions.narrow(0, first, last - first);
          const torch::Tensor margins = -signs.index_select(0, batch) * net->forward(inputs.index_select(0, batch)).reshape({-1});
          // softplus written out: torch's softplus switches to the identity above 20, kernelscope's does not.
          const torch::Tensor loss = (torch::relu(margins) + torch::log1p(torch::exp(-margins.abs()))).mean();
          net->zero_grad();
          loss.backward();
          torch::NoGradGuard no_grad;
          const double rate = rates[s].item<double>();
          for (const auto& p : parameters) p.sub_(p.grad(), rate);
        }
      });
      for (auto& named : net->named_parameters())
        difference = std::max(difference, relative_difference(read_array(directory / "run" / "thetaT" / (named.key() + ".npy")), named.value()));
    } else if (task == "jacobian") {
      const torch::Tensor inputs = pool.narrow(0, 0, 256);
      torch::Tensor jacobian;
      timing = ks::bench::time_runs(repeats, [&] { jacobian = jacobian_rows(net, inputs); });
      difference = relative_difference(read_array(directory / "jacobian_check.npy"), jacobian.narrow(0, 0, 8));
      result["n"] = 256;
    } else {
      const int64_t count = std::stoll(task.substr(5));
      const torch::Tensor inputs = pool.narrow(0, 0, count);
      torch::Tensor gram;
      timing = ks::bench::time_runs(repeats, [&] {
        const torch::Tensor jacobian = jacobian_rows(net, inputs);
        gram = jacobian.mm(jacobian.t());
      });
      difference = relative_difference(read_array(directory / ("gram_" + std::to_string(count) + ".npy")), gram);
      result["n"] = count;
    }
    result["max_rel_difference"] = difference;
    result["mismatch"] = !(difference <= 1e-10);
    result["median"] = timing.median;
    result["min"] = timing.min;
    result["max"] = timing.max;
    result["repeats"] = repeats;
    result["peak_memory_gb"] = ks::bench::peak_memory_gb();
    std::cout << result.dump() << std::endl;
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "bench_peer_libtorch: " << error.what() << "\n";
    return 1;
  }
}
