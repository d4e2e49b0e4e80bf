// numpy conversions for the Python module: argument checks with the argument's name, zero-copy outputs, θ as a dict.
// No computation happens here.
#include "python/arrays.h"

#include <memory>

namespace ks::python {

namespace {

std::string dtype_name(const py::array& array) { return py::str(array.dtype()).cast<std::string>(); }

std::string shape_of(const py::array& array) {
  std::string text = "(";
  for (py::ssize_t d = 0; d < array.ndim(); ++d) text += (d ? ", " : "") + std::to_string(array.shape(d));
  return text + (array.ndim() == 1 ? ",)" : ")");
}

}  // namespace

Tensor tensor_from(const py::handle& handle, const std::string& argument, int min_rank, int max_rank) {
  if (!py::isinstance<py::array>(handle))
    throw py::type_error(argument + ": expected a numpy.ndarray of float64, got " + std::string(py::str(py::type::of(handle)).cast<std::string>()));
  const py::array array = py::reinterpret_borrow<py::array>(handle);
  if (!array.dtype().is(py::dtype::of<double>()))
    throw py::type_error(argument + ": expected float64 values, got " + dtype_name(array) + " (convert with .astype(numpy.float64))");
  if (!(array.flags() & py::array::c_style))
    throw py::value_error(argument + ": expected a C-contiguous array, got strides that are not C order (use numpy.ascontiguousarray)");
  if (array.ndim() < min_rank || array.ndim() > max_rank)
    throw py::value_error(argument + ": expected " + std::to_string(min_rank) + " to " + std::to_string(max_rank) + " dimensions, got shape " +
                          shape_of(array));
  Shape shape;
  for (py::ssize_t d = 0; d < array.ndim(); ++d) shape.push_back(static_cast<int64_t>(array.shape(d)));
  const double* values = static_cast<const double*>(array.data());
  return Tensor(shape, AlignedBuffer(values, values + array.size()));
}

py::array_t<double> to_numpy(Tensor tensor) {
  auto owner = std::make_unique<Tensor>(std::move(tensor));
  std::vector<py::ssize_t> shape(owner->shape().begin(), owner->shape().end());
  double* data = owner->data();
  py::capsule keep(owner.get(), [](void* pointer) { delete static_cast<Tensor*>(pointer); });
  owner.release();  // the capsule owns it now
  return py::array_t<double>(shape, data, keep);
}

py::object parameters_to_dict(const Sequential& model, Parameters theta) {
  py::object ordered = py::module_::import("collections").attr("OrderedDict")();
  for (size_t k = 0; k < theta.size(); ++k) ordered[py::str(model.parameter_names()[k])] = to_numpy(std::move(theta[k]));
  return ordered;
}

Parameters parameters_from(const Sequential& model, const py::handle& handle, const std::string& argument) {
  if (!py::isinstance<py::dict>(handle) && !py::hasattr(handle, "keys"))
    throw py::type_error(argument + ": expected a dict of state_dict names to float64 arrays");
  const py::object mapping = py::reinterpret_borrow<py::object>(handle);
  const std::vector<std::string>& names = model.parameter_names();
  for (const py::handle key : mapping.attr("keys")()) {
    const std::string name = py::str(key).cast<std::string>();
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw py::key_error(argument + ": '" + name + "' is not a parameter of this model (its names: " + py::str(py::cast(names)).cast<std::string>() + ")");
  }
  Parameters theta;
  for (size_t k = 0; k < names.size(); ++k) {
    if (!mapping.contains(py::str(names[k]))) throw py::key_error(argument + ": '" + names[k] + "' is missing");
    const std::string entry = argument + "['" + names[k] + "']";
    Tensor tensor = tensor_from(mapping[py::str(names[k])], entry, 1, 4);
    if (tensor.shape() != model.parameter_shapes()[k])
      throw py::value_error(entry + ": expected shape " + shape_string(model.parameter_shapes()[k]) + ", got " + shape_string(tensor.shape()));
    theta.push_back(std::move(tensor));
  }
  return theta;
}

}  // namespace ks::python
