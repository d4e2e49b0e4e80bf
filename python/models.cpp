// The Python module's models and θ-as-argument kernels: Model (a spec built into a network), its outputs, the NTK,
// per-sample Jacobian and conjugate kernel at any θ. Nothing here trains or reads run directories (runs.cpp does).
#include "python/module.h"

#include "kernels/ntk.h"
#include "kernels/trace.h"
#include "nn/model.h"

namespace ks::python {

namespace {

Shape shape_from(const py::handle& sequence, const std::string& argument) {
  Shape shape;
  try {
    for (const py::handle d : sequence) shape.push_back(d.cast<int64_t>());
  } catch (const py::cast_error&) {
    throw py::type_error(argument + ": expected a tuple of positive integers");
  }
  for (int64_t d : shape)
    if (d <= 0) throw py::value_error(argument + ": every dimension must be positive, got " + shape_string(shape));
  return shape;
}

Model make_model(const std::string& spec, const py::handle& input_shape, int64_t outputs, const std::string& init, uint64_t seed) {
  if (outputs < 1) throw py::value_error("outputs: expected 1 or more, got " + std::to_string(outputs));
  ModelOptions options{spec, shape_from(input_shape, "input_shape"), outputs, parse_init(init), seed};
  py::gil_scoped_release release;
  return Model{std::shared_ptr<const Sequential>(build_model(options)), options};
}

// (N, ...sample) inputs for the model: the sample shape must be the model's.
Tensor inputs_for(const Model& model, const py::handle& array, const std::string& argument) {
  Tensor x = tensor_from(array, argument, 2, 4);
  const Shape sample(x.shape().begin() + 1, x.shape().end());
  if (sample != model.options.sample_shape)
    throw py::value_error(argument + ": expected samples of shape " + shape_string(model.options.sample_shape) + " (the model's input_shape), got " +
                          shape_string(x.shape()) + " (N first)");
  return x;
}

NtkOptions ntk_options(const std::string& method, bool trace_outputs) {
  NtkOptions options;
  options.method = parse_kernel_method(method);
  options.trace_outputs = trace_outputs;
  return options;
}

py::array_t<double> ntk(const Model& model, const py::handle& x1, const py::object& x2, const py::handle& params, const std::string& method,
                        bool trace_outputs) {
  const Tensor a = inputs_for(model, x1, "x1");
  const bool symmetric = x2.is_none();
  const Tensor b = symmetric ? Tensor() : inputs_for(model, x2, "x2");
  const Parameters theta = parameters_from(*model.network, params, "params");
  const NtkOptions options = ntk_options(method, trace_outputs);
  Tensor K;
  {
    py::gil_scoped_release release;
    K = ntk_gram(*model.network, theta, a, symmetric ? nullptr : &b, options);
  }
  return to_numpy(std::move(K));
}

// f(x; θ) computed on the model's samples with the GIL released: apply, Jacobian, conjugate features share this.
template <class Compute>
py::array_t<double> on_inputs(const Model& model, const py::handle& x, const py::handle& params, const Compute& compute) {
  const Tensor inputs = inputs_for(model, x, "x");
  const Parameters theta = parameters_from(*model.network, params, "params");
  Tensor out;
  {
    py::gil_scoped_release release;
    out = compute(*model.network, theta, inputs);
  }
  return to_numpy(std::move(out));
}

}  // namespace

void bind_models(py::module_& m) {
  py::class_<Model>(m, "Model", "A network built from a spec string (as `kernelscope train --arch`). It holds no parameters: θ is always an argument.")
      .def(py::init(&make_model), py::arg("spec"), py::arg("input_shape"), py::arg("outputs") = 1, py::arg("init") = "glorot-uniform",
           py::arg("seed") = 0,
           "Model(spec, input_shape, outputs=1, init='glorot-uniform', seed=0)\n\nspec: e.g. 'mlp:64-64', 'vgg:16', 'conv:8,M,16,A'; input_shape: one sample "
           "without the batch axis, (D,) or (C, H, W); init: glorot-uniform, he-normal, ...; seed: for initial_parameters().")
      .def_property_readonly("spec", [](const Model& model) { return model.options.spec; })
      .def_property_readonly("input_shape", [](const Model& model) { return py::tuple(py::cast(model.options.sample_shape)); })
      .def_property_readonly("outputs", [](const Model& model) { return model.options.outputs; })
      .def_property_readonly("parameter_names", [](const Model& model) { return model.network->parameter_names(); },
                             "The parameters' PyTorch state_dict names, in state_dict order.")
      .def_property_readonly("parameter_count", [](const Model& model) { return model.network->parameter_count(); })
      .def("initial_parameters", [](const Model& model) { return parameters_to_dict(*model.network, initial_parameters(*model.network, model.options)); },
           "θ_0 from the model's init and seed: an OrderedDict of state_dict names to float64 arrays (the bytes `kernelscope train` starts from).")
      .def("apply", [](const Model& model, const py::handle& x, const py::handle& params) {
             return on_inputs(model, x, params, [](const Sequential& net, const Parameters& theta, const Tensor& in) { return net.apply(theta, in); });
           }, py::arg("x"), py::kw_only(), py::arg("params"), "f(x; params): (N, outputs) for x of shape (N, *input_shape).")
      .def("__repr__", [](const Model& model) { return "kernelscope.Model('" + model.options.spec + "', input_shape=" + shape_string(model.options.sample_shape) + ")\n" + model.network->describe(); });

  m.def("ntk", &ntk, py::arg("model"), py::arg("x1"), py::arg("x2") = py::none(), py::kw_only(), py::arg("params"), py::arg("method") = "auto",
        py::arg("trace_outputs") = false,
        "The empirical tangent kernel ⟨∇θ f(x1), ∇θ f(x2)⟩ at params: (N·C, M·C), row n·C + c; with x2 None the exactly symmetric Gram of x1.\n"
        "method: auto, jacobian or structured; trace_outputs: reduce each C × C block by its trace, (N, M).");
  m.def("per_sample_jacobian", [](const Model& model, const py::handle& x, const py::handle& params) {
          return on_inputs(model, x, params, [](const Sequential& net, const Parameters& theta, const Tensor& in) { return per_sample_jacobian(net, theta, in); });
        }, py::arg("model"), py::arg("x"), py::kw_only(), py::arg("params"), "∂f_c(x_n)/∂θ: (N·C, P), columns in state_dict order.");
  m.def("conjugate_features", [](const Model& model, const py::handle& x, const py::handle& params) {
          return on_inputs(model, x, params, [](const Sequential& net, const Parameters& theta, const Tensor& in) { return conjugate_features(net, theta, in); });
        }, py::arg("model"), py::arg("x"), py::kw_only(), py::arg("params"), "φ(x): the input of the last parameterised layer, (N, F).");
  m.def("conjugate_kernel", [](const Model& model, const py::handle& x1, const py::object& x2, const py::handle& params) {
          const Tensor a = inputs_for(model, x1, "x1");
          const Tensor b = x2.is_none() ? Tensor() : inputs_for(model, x2, "x2");
          const Parameters theta = parameters_from(*model.network, params, "params");
          Tensor K;
          {
            py::gil_scoped_release release;
            K = conjugate_kernel(*model.network, theta, a, x2.is_none() ? nullptr : &b);
          }
          return to_numpy(std::move(K));
        }, py::arg("model"), py::arg("x1"), py::arg("x2") = py::none(), py::kw_only(), py::arg("params"),
        "The conjugate kernel φ(x1) φ(x2)ᵀ at params, (N, M).");
}

}  // namespace ks::python
