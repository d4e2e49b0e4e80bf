// kernelscope's one header for library users: models and their θ, training and replay, run directories, data, the
// tangent, after and conjugate kernels, the exact path kernel, hard-margin SVMs, kernel metrics and invariance.
// It is all a program needs; the command-line program (cli/) and the tests are not part of the library.
#pragma once

#include "autodiff/tensor.h"
#include "datasets/dataset.h"
#include "datasets/loaders.h"
#include "datasets/npy.h"
#include "datasets/task.h"
#include "datasets/transform.h"
#include "kernels/after_kernel.h"
#include "kernels/epk.h"
#include "kernels/invariance.h"
#include "kernels/metrics.h"
#include "kernels/ntk.h"
#include "kernels/run_kernel.h"
#include "kernels/svm.h"
#include "kernels/trace.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/run.h"
#include "nn/train.h"
