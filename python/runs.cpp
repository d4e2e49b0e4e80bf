// The Python module's runs: train (the command-line program's own training, so the same bytes), Run (a run directory:
// θ at any step, its data and model) and a run's kernels as `kernelscope kernel` computes them.
#include <functional>
#include <map>

#include "cli/commands.h"
#include "kernels/epk.h"
#include "kernels/run_kernel.h"
#include "nn/run.h"
#include "python/module.h"

namespace ks::python {

namespace {

using Setter = std::function<void(cli::TrainCommandOptions&, const py::handle&)>;

template <class T>
Setter set(T cli::TrainCommandOptions::*field) {
  return [field](cli::TrainCommandOptions& o, const py::handle& value) { o.*field = value.cast<T>(); };
}

// train()'s keywords: `kernelscope train`'s long options with '_' for '-'.
const std::map<std::string, Setter>& train_keywords() {
  using O = cli::TrainCommandOptions;
  static const std::map<std::string, Setter> keywords{
      {"data", set(&O::data)}, {"classes", set(&O::classes)}, {"arch", set(&O::arch)}, {"init", set(&O::init)}, {"loss", set(&O::loss)},
      {"epochs", set(&O::epochs)}, {"batch", set(&O::batch)}, {"train_size", set(&O::train_size)}, {"test_size", set(&O::test_size)},
      {"lr", set(&O::lr)}, {"lr_step_epochs", set(&O::lr_step_epochs)}, {"lr_gamma", set(&O::lr_gamma)}, {"weight_decay", set(&O::weight_decay)},
      {"optimizer", set(&O::optimizer)}, {"momentum", set(&O::momentum)}, {"beta1", set(&O::beta1)}, {"beta2", set(&O::beta2)},
      {"checkpoint_every", set(&O::checkpoint_every)}, {"seed", set(&O::seed)}, {"augment", set(&O::augment)},
      {"keras_augment", set(&O::keras_augment)}, {"num_parameters", set(&O::num_parameters)}, {"overwrite", set(&O::overwrite)},
      {"quiet", set(&O::quiet)}};
  return keywords;
}

struct PyRun {
  std::shared_ptr<const Run> run;
};

PyRun open_run(const std::string& directory) {
  py::gil_scoped_release release;
  return PyRun{std::make_shared<const Run>(load_run(directory))};
}

// Ctrl-C while the GIL is released only marks the signal; this raises KeyboardInterrupt from it in the calling thread.
void throw_if_interrupted() {
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

PyRun train(const std::string& out, const py::kwargs& keywords) {
  cli::TrainCommandOptions options;
  options.out = out;
  options.check_interrupt = throw_if_interrupted;
  for (const auto& [key, value] : keywords) {
    const std::string name = py::str(key).cast<std::string>();
    const auto found = train_keywords().find(name);
    if (found == train_keywords().end()) throw py::type_error("train() got an unexpected keyword argument '" + name + "' (see help(kernelscope.train))");
    try {
      found->second(options, value);
    } catch (const py::cast_error&) {
      throw py::type_error("train(): " + name + " has the wrong type (" + py::str(py::type::of(value)).cast<std::string>() + ")");
    }
  }
  int status = 0;
  {
    py::gil_scoped_release release;
    status = cli::run_train(options);
  }
  if (status != 0) throw std::runtime_error("train(): training stopped with status " + std::to_string(status));
  return open_run(out);
}

py::array_t<double> run_kernel_of(const PyRun& self, const std::string& kind, const std::string& rows, const std::string& cols, int64_t limit,
                                  const std::string& method, bool trace_outputs, bool cosine) {
  RunKernelOptions options;
  options.kind = kind;
  options.rows = rows;
  options.cols = cols;
  options.limit = limit;
  options.method = parse_kernel_method(method);
  options.trace_outputs = trace_outputs;
  options.cosine = cosine;
  Tensor K;
  {
    py::gil_scoped_release release;
    K = run_kernel(*self.run, options);
  }
  return to_numpy(std::move(K));
}

py::array_t<int64_t> labels_of(const Dataset& data) {
  py::array_t<int64_t> labels(static_cast<py::ssize_t>(data.labels.size()));
  for (size_t n = 0; n < data.labels.size(); ++n) labels.mutable_at(static_cast<py::ssize_t>(n)) = data.labels[n];
  return labels;
}


py::dict machine_summary(const KernelMachine& machine) {
  py::dict out;
  out["kind"] = path_kernel_name(machine.kind);
  out["outputs"] = to_numpy(machine.outputs);
  out["max_abs_error"] = machine.max_abs_error;
  out["max_rel_error"] = machine.max_rel_error;
  out["decisions_agree"] = machine.decisions_agree;
  out["max_step_residual"] = machine.step_residual_known ? py::cast(machine.max_step_residual) : py::none();
  return out;
}

// The exact path kernel of the run on inputs x: a namespace of arrays (initial, final, attributions, coefficients,
// kernel), the machines (one dict each) and the quadrature's summary.
py::object run_epk(const PyRun& self, const py::handle& x, const std::string& quadrature, bool keep_kernel) {
  const Run& run = *self.run;
  Tensor inputs = tensor_from(x, "x", 2, 4);
  if (Shape(inputs.shape().begin() + 1, inputs.shape().end()) != run.config.model.sample_shape)
    throw py::value_error("x: expected samples of shape " + shape_string(run.config.model.sample_shape) + ", got " + shape_string(inputs.shape()) + " (N first)");
  EpkOptions options;
  options.quadrature = parse_quadrature(quadrature);
  options.keep_kernel = keep_kernel;
  options.progress = [](int64_t, int64_t) { throw_if_interrupted(); };  // between steps, on the calling thread
  EpkResult result;
  {
    py::gil_scoped_release release;
    result = exact_path_kernel(*run.model, run.theta0, inputs, TrainingRecord::from(run), options);
  }
  py::dict summary;
  summary["mode"] = result.quadrature.mode;
  summary["pieces"] = result.quadrature.pieces;
  summary["nodes"] = result.quadrature.nodes;
  summary["breakpoints"] = result.quadrature.breakpoints;
  summary["max_segment_residual"] = result.quadrature.max_segment_residual;
  py::list machines;
  for (const KernelMachine& machine : result.machines) machines.append(machine_summary(machine));
  py::object namespace_type = py::module_::import("types").attr("SimpleNamespace");
  return namespace_type(py::arg("initial") = to_numpy(std::move(result.initial)), py::arg("final") = to_numpy(std::move(result.final)),
                        py::arg("attributions") = to_numpy(std::move(result.attributions)), py::arg("coefficients") = to_numpy(std::move(result.coefficients)),
                        py::arg("kernel") = keep_kernel ? py::object(to_numpy(std::move(result.kernel))) : py::none(), py::arg("machines") = machines,
                        py::arg("quadrature") = summary, py::arg("steps") = result.steps, py::arg("seconds") = result.seconds);
}

}  // namespace

void bind_runs(py::module_& m) {
  py::class_<PyRun>(m, "Run", "A run directory written by `kernelscope train` or kernelscope.train(): its model, θ at any step and its data.")
      .def(py::init(&open_run), py::arg("directory"))
      .def_property_readonly("directory", [](const PyRun& r) { return r.run->directory.string(); })
      .def_property_readonly("model", [](const PyRun& r) {
        return Model{std::shared_ptr<const Sequential>(r.run, r.run->model.get()), r.run->config.model};
      })
      .def_property_readonly("steps", [](const PyRun& r) { return static_cast<int64_t>(r.run->steps.size()); }, "The number of SGD steps taken.")
      .def_property_readonly("theta0", [](const PyRun& r) { return parameters_to_dict(*r.run->model, r.run->theta0); })
      .def_property_readonly("thetaT", [](const PyRun& r) { return parameters_to_dict(*r.run->model, r.run->thetaT); })
      .def("parameters_at", [](const PyRun& r, int64_t step) {
             if (step < 0 || step > static_cast<int64_t>(r.run->steps.size()))
               throw py::index_error("step: this run has steps 0.." + std::to_string(r.run->steps.size()) + ", got " + std::to_string(step));
             Parameters theta;
             {
               py::gil_scoped_release release;
               theta = r.run->parameters_at(step);
             }
             return parameters_to_dict(*r.run->model, std::move(theta));
           }, py::arg("step"), "θ_step, replayed bit-exactly from the nearest checkpoint: an OrderedDict of state_dict names to arrays.")
      .def_property_readonly("train_inputs", [](const PyRun& r) { return to_numpy(r.run->task.train.inputs); })
      .def_property_readonly("test_inputs", [](const PyRun& r) { return to_numpy(r.run->task.test.inputs); })
      .def_property_readonly("train_labels", [](const PyRun& r) { return labels_of(r.run->task.train); })
      .def_property_readonly("test_labels", [](const PyRun& r) { return labels_of(r.run->task.test); })
      .def("kernel", &run_kernel_of, py::kw_only(), py::arg("kind") = "ntk-init", py::arg("rows") = "train", py::arg("cols") = "train",
           py::arg("limit") = 0, py::arg("method") = "auto", py::arg("trace_outputs") = false, py::arg("cosine") = false,
           "The run's kernel as `kernelscope kernel` computes it (the same bytes): kind ntk-init, after, conjugate-init, conjugate-after or "
           "step:S; rows, cols: train or test; limit: the first N samples of each (0: all).")
      .def("epk", &run_epk, py::arg("x"), py::kw_only(), py::arg("quadrature") = "auto", py::arg("keep_kernel") = false,
           "The exact path kernel (Bell et al. 2023) of this run on inputs x (N, *input_shape), as `kernelscope epk`: a namespace with "
           "initial and final (the network's f at θ_0 and θ_T, (N, C)), attributions (N, training points, C), coefficients, kernel (with "
           "keep_kernel), machines (exact, ntk-init, after, domingos: outputs, max_rel_error, decisions_agree, max_step_residual) and "
           "quadrature (mode, pieces, nodes, breakpoints). quadrature: auto, exact, gauss-legendre:N or adaptive:TOL.")
      .def("after_kernel", [](const PyRun& r, const std::string& method, bool scale_kernel) { return after_kernel_of(*r.run, parse_kernel_method(method), scale_kernel); },
           py::kw_only(), py::arg("method") = "auto", py::arg("scale_kernel") = false,
           "Long's after-kernel protocol: the NTK at θ_0 and at θ_T on the run's training and test sets, a hard-margin SVM on each "
           "(scale_kernel: divide by the mean training K(x, x), as Long), and its test accuracy beside the network's.")
      .def("__repr__", [](const PyRun& r) { return "kernelscope.Run('" + r.run->directory.string() + "', " + r.run->config.model.spec + ", " + std::to_string(r.run->steps.size()) + " steps)"; });

  m.def("train", &train, py::arg("out"),
        "train(out, *, data, arch='mlp:512-512', epochs=5, batch=32, lr=0.05, seed=0, ...) -> Run\n\n"
        "`kernelscope train` from Python (the same run directory, byte for byte). Keywords are the program's long options with '_' for "
        "'-': data, classes, arch, init, loss, epochs, batch, train_size, test_size, lr, lr_step_epochs, lr_gamma, weight_decay, optimizer, "
        "momentum, beta1, beta2, checkpoint_every, seed, augment, keras_augment, num_parameters, overwrite, quiet (no progress bar).\n"
        "The run is written under a temporary name and renamed when complete; Ctrl-C stops training with KeyboardInterrupt and "
        "leaves nothing behind.");
}

}  // namespace ks::python
