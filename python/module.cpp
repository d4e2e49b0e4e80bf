// The kernelscope Python module: numpy in and out, θ as a dict with PyTorch state_dict names, the library's kernels and
// the program's training, bit for bit. It adds no computation of its own; models.cpp and runs.cpp hold the bindings.
#include "autodiff/tensor.h"
#include "python/module.h"

PYBIND11_MODULE(kernelscope, m) {
  ks::keep_freed_memory();
  m.doc() =
      "kernelscope: neural networks as kernel machines, in float64, bit for bit as the kernelscope program.\n\n"
      "  model = kernelscope.Model('mlp:16-16', input_shape=(2,))\n"
      "  theta = model.initial_parameters()          # OrderedDict, PyTorch state_dict names\n"
      "  K = kernelscope.ntk(model, x, params=theta)  # (N, N) float64\n"
      "  run = kernelscope.train('runs/moons', data='toy:moons', arch='mlp:16-16', epochs=2)\n"
      "  after = run.kernel(kind='after')             # the bytes `kernelscope kernel --kind after` writes";
  ks::python::bind_models(m);
  ks::python::bind_analysis(m);
  ks::python::bind_runs(m);
}
