// The Python module's analyses of kernels: hard-margin SVMs, kernel metrics, invariance scores and the image
// transformations they use, and Long's after-kernel protocol on a run. Kernels come in as arrays; nothing here trains.
#include "datasets/transform.h"
#include "kernels/after_kernel.h"
#include "kernels/invariance.h"
#include "kernels/metrics.h"
#include "kernels/svm.h"
#include "python/module.h"

namespace ks::python {

namespace {

std::vector<int> labels_from(const py::handle& handle, const std::string& argument) {
  const py::array array = py::array::ensure(handle);
  if (!array || array.ndim() != 1 || !(array.dtype().kind() == 'i' || array.dtype().kind() == 'u' || array.dtype().kind() == 'b'))
    throw py::type_error(argument + ": expected a 1-D array of integer class labels");
  const py::array_t<int64_t, py::array::forcecast> values(array);
  return std::vector<int>(values.data(), values.data() + values.size());
}

Tensor square_from(const py::handle& handle, const std::string& argument) {
  Tensor K = tensor_from(handle, argument, 2, 2);
  if (K.dim(0) != K.dim(1)) throw py::value_error(argument + ": expected a square Gram, got " + shape_string(K.shape()));
  return K;
}

SvmModel svm(const py::handle& gram, const py::handle& labels, double C, bool scale_by_mean_norm, double tolerance) {
  const Tensor K = square_from(gram, "gram");
  const std::vector<int> y = labels_from(labels, "labels");
  if (static_cast<int64_t>(y.size()) != K.dim(0))
    throw py::value_error("labels: " + std::to_string(y.size()) + " labels for a Gram of " + std::to_string(K.dim(0)) + " points");
  SvmOptions options;
  options.C = C;
  options.scale_by_mean_norm = scale_by_mean_norm;
  options.tolerance = tolerance;
  py::gil_scoped_release release;
  return fit_svm(K, y, options);
}

Tensor cross_for(const SvmModel& model, const py::handle& cross) {
  Tensor K = tensor_from(cross, "cross", 2, 2);
  if (K.dim(1) != static_cast<int64_t>(model.coefficients.size()))
    throw py::value_error("cross: expected (M, " + std::to_string(model.coefficients.size()) + ") kernel values against the training points, got " +
                          shape_string(K.shape()));
  return K;
}

py::object side_of(const AfterKernelSide& side) {
  return py::module_::import("types").attr("SimpleNamespace")(py::arg("train_gram") = to_numpy(side.train_gram), py::arg("test_gram") = to_numpy(side.test_gram),
                                                               py::arg("svm") = side.svm, py::arg("svm_accuracy") = side.svm_accuracy,
                                                               py::arg("network_accuracy") = side.network_accuracy);
}

void bind_svm(py::module_& m) {
  py::class_<SvmModel>(m, "SvmModel", "A hard-margin SVM on a precomputed kernel (libsvm): f(x) = Σ coefficients_i K(x, x_i) / scale + bias.")
      .def_property_readonly("coefficients", [](const SvmModel& s) { return py::array_t<double>(static_cast<py::ssize_t>(s.coefficients.size()), s.coefficients.data()); })
      .def_readonly("bias", &SvmModel::bias)
      .def_readonly("scale", &SvmModel::scale)
      .def_readonly("support_vectors", &SvmModel::support_vectors)
      .def_readonly("margin", &SvmModel::margin)
      .def_readonly("training_errors", &SvmModel::training_errors)
      .def_readonly("converged", &SvmModel::converged)
      .def_property_readonly("separated", &SvmModel::separated)
      .def("decision", [](const SvmModel& s, const py::handle& cross) {
             const std::vector<double> values = svm_decision(s, cross_for(s, cross));
             return py::array_t<double>(static_cast<py::ssize_t>(values.size()), values.data());
           }, py::arg("cross"), "Decision values for kernel rows against the training points, (M, N) → (M).")
      .def("accuracy", [](const SvmModel& s, const py::handle& cross, const py::handle& labels) { return svm_accuracy(s, cross_for(s, cross), labels_from(labels, "labels")); },
           py::arg("cross"), py::arg("labels"));
  m.def("svm", &svm, py::arg("gram"), py::arg("labels"), py::kw_only(), py::arg("C") = 1e6, py::arg("scale_by_mean_norm") = false,
        py::arg("tolerance") = 1e-6, "A hard-margin SVM (large C) on a training Gram (N, N) and 0/1 labels; scale_by_mean_norm as Long 2021.");
}

void bind_metrics(py::module_& m) {
  m.def("kernel_alignment", [](const py::handle& a, const py::handle& b) { return kernel_alignment(tensor_from(a, "first", 2, 2), tensor_from(b, "second", 2, 2)); },
        py::arg("first"), py::arg("second"), "⟨K₁, K₂⟩_F / (‖K₁‖_F ‖K₂‖_F).");
  m.def("centered_kernel_alignment", [](const py::handle& a, const py::handle& b) { return centered_kernel_alignment(square_from(a, "first"), square_from(b, "second")); },
        py::arg("first"), py::arg("second"), "CKA: the alignment after centering both Grams.");
  m.def("target_alignment", [](const py::handle& K, const py::handle& labels) { return target_alignment(square_from(K, "kernel"), labels_from(labels, "labels")); },
        py::arg("kernel"), py::arg("labels"), "yᵀKy / (‖K‖_F ‖y‖²) with y = ±1 from 0/1 labels.");
  m.def("kernel_distance", [](const py::handle& a, const py::handle& b) { return kernel_distance(tensor_from(a, "first", 2, 2), tensor_from(b, "second", 2, 2)); },
        py::arg("first"), py::arg("second"), "Fort et al. 2020: 1 − the uncentered alignment.");
  m.def("effective_rank", [](const py::handle& K) {
          const EffectiveRank rank = effective_rank(square_from(K, "kernel"));
          py::dict out;
          out["trace_ratio"] = rank.trace_ratio;
          out["entropy"] = rank.entropy;
          return out;
        }, py::arg("kernel"), "trace / λ_max and the entropy effective rank.");
}

void bind_invariance(py::module_& m) {
  m.def("invariance_score", [](const Model& model, const py::handle& images, const py::handle& transformed, const py::handle& params) {
          const Tensor a = tensor_from(images, "images", 4, 4), b = tensor_from(transformed, "transformed", 4, 4);
          const Parameters theta = parameters_from(*model.network, params, "params");
          py::gil_scoped_release release;
          return invariance_score(*model.network, theta, a, b);
        }, py::arg("model"), py::arg("images"), py::arg("transformed"), py::kw_only(), py::arg("params"),
        "The mean over images of K(x, Tx) / sqrt(K(x, x) K(Tx, Tx)), K the NTK at params (traced over outputs).");
  m.def("translate_images", [](const py::handle& x, int64_t dx, int64_t dy) { return to_numpy(translate_images(tensor_from(x, "images", 4, 4), dx, dy)); },
        py::arg("images"), py::arg("dx"), py::arg("dy"), "Whole-pixel shifts of (N, C, H, W) images, zero fill.");
  m.def("rotate_images", [](const py::handle& x, double radians) { return to_numpy(rotate_images(tensor_from(x, "images", 4, 4), radians)); },
        py::arg("images"), py::arg("radians"), "Counter-clockwise rotation about the centre, bilinear, zero fill.");
  m.def("zoom_images", [](const py::handle& x, int64_t crop) { return to_numpy(zoom_images(tensor_from(x, "images", 4, 4), crop)); },
        py::arg("images"), py::arg("crop"), "The central crop × crop square resized back to H × W.");
}

}  // namespace

void bind_analysis(py::module_& m) {
  bind_svm(m);
  bind_metrics(m);
  bind_invariance(m);
  py::class_<AfterKernelResult>(m, "AfterKernelResult")
      .def_property_readonly("initial", [](const AfterKernelResult& r) { return side_of(r.initial); })
      .def_property_readonly("after", [](const AfterKernelResult& r) { return side_of(r.after); });
}

AfterKernelResult after_kernel_of(const Run& run, KernelMethod method, bool scale_kernel) {
  AfterKernelOptions options;
  options.method = method;
  options.svm.scale_by_mean_norm = scale_kernel;
  py::gil_scoped_release release;
  return after_kernel_protocol(*run.model, run.theta0, run.thetaT, run.task.train, run.task.test, run.config.training.loss, options);
}

}  // namespace ks::python
