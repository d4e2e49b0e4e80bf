// numpy arrays in and out of the Python module: float64 C-order checks that name the argument, and Tensors handed to
// numpy without a copy. It knows no model or kernel; the bindings call it.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "autodiff/tensor.h"
#include "nn/layers.h"

namespace ks::python {

namespace py = pybind11;

// The array as a Tensor (copied: the library's Tensors own their values). Raises TypeError for another type or dtype and
// ValueError for a non-C-contiguous array or a rank outside [min_rank, max_rank], each naming `argument`.
Tensor tensor_from(const py::handle& array, const std::string& argument, int min_rank = 1, int max_rank = 4);
// The Tensor moved into a numpy array that owns it (no copy).
py::array_t<double> to_numpy(Tensor tensor);

// θ as a dict of state_dict names to arrays, in state_dict order (a collections.OrderedDict).
py::object parameters_to_dict(const Sequential& model, Parameters theta);
// θ from a mapping with exactly the model's state_dict names: KeyError for a missing or unknown name, TypeError and
// ValueError naming the entry for a wrong dtype, order or shape.
Parameters parameters_from(const Sequential& model, const py::handle& mapping, const std::string& argument);

}  // namespace ks::python
