// The Python module's shared pieces: the Model it wraps (a network and the options that built it) and each file's
// binding function. Only the module's own files include it.
#pragma once

#include <memory>

#include "kernels/after_kernel.h"
#include "nn/model.h"
#include "nn/run.h"
#include "python/arrays.h"

namespace ks::python {

struct Model {
  std::shared_ptr<const Sequential> network;  // shared with a Run when it comes from one
  ModelOptions options;
};

void bind_models(py::module_& m);
void bind_runs(py::module_& m);
void bind_analysis(py::module_& m);  // before bind_runs: Run.after_kernel returns its types
// Long's after-kernel protocol on a run (analysis.cpp; Run binds it).
AfterKernelResult after_kernel_of(const Run& run, KernelMethod method, bool scale_kernel);

}  // namespace ks::python
