// Primitive ops as <op>_forward / <op>_backward pairs on raw float64 buffers (llm.c style), with slow references beside the fast ones.
// They do not check shapes or record anything: the graph wrappers in functions.h do both. Every backward ADDS into its d-buffers; a null d-pointer is skipped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ks {

// ---- matrix products -------------------------------------------------------------------------
// out = a b
void matmul_forward(double* out, const double* a, const double* b,  // (N, M), (N, K), (K, M)
                    int64_t N, int64_t K, int64_t M);
void matmul_backward(double* da, double* db, const double* dout,     // (N, K), (K, M), (N, M)
                     const double* a, const double* b, int64_t N, int64_t K, int64_t M);

// out = inp weightᵀ + bias, weight stored (out_features, in_features) as in PyTorch; bias may be null.
void linear_forward(double* out, const double* inp, const double* weight, const double* bias,  // (N, O), (N, I), (O, I), (O)
                    int64_t N, int64_t I, int64_t O);
void linear_backward(double* dinp, double* dweight, double* dbias, const double* dout,  // (N, I), (O, I), (O), (N, O)
                     const double* inp, const double* weight, int64_t N, int64_t I, int64_t O);

// ---- elementwise with trailing broadcast: a has rows*period values, b has period values ----------
enum class Binary { add, sub, mul };
void binary_forward(Binary kind, double* out, const double* a, const double* b,  // (rows*period), (rows*period), (period)
                    int64_t rows, int64_t period);
void binary_backward(Binary kind, double* da, double* db, const double* dout,  // (rows*period), (period), (rows*period)
                     const double* a, const double* b, int64_t rows, int64_t period);

void scale_forward(double* out, const double* inp, double factor, int64_t n);  // (n), (n)
void scale_backward(double* dinp, const double* dout, double factor, int64_t n);

// ---- reductions ------------------------------------------------------------------------------
void sum_forward(double* out, const double* inp, int64_t n);  // (1), (n)
void sum_backward(double* dinp, const double* dout, int64_t n);
void mean_forward(double* out, const double* inp, int64_t n);  // (1), (n)
void mean_backward(double* dinp, const double* dout, int64_t n);

// ---- activations (elementwise over n values) -------------------------------------------------
void relu_forward(double* out, const double* inp, int64_t n);
void relu_backward(double* dinp, const double* dout, const double* inp, int64_t n);  // derivative 0 at 0, as PyTorch
void tanh_forward(double* out, const double* inp, int64_t n);
void tanh_backward(double* dinp, const double* dout, const double* out, int64_t n);
void sigmoid_forward(double* out, const double* inp, int64_t n);
void sigmoid_backward(double* dinp, const double* dout, const double* out, int64_t n);
void softplus_forward(double* out, const double* inp, int64_t n);
void softplus_backward(double* dinp, const double* dout, const double* inp, int64_t n);
double stable_sigmoid(double x);
double stable_softplus(double x);  // log(1 + exp(x)) without overflow

// A thread's scratch buffer of at least `size` values: it only grows, so calls of alternating sizes (the layers of one
// net) do not zero-fill it again each time. It holds whatever its last user left.
template <class T>
T* scratch_at_least(std::vector<T>& buffer, int64_t size) {
  if (static_cast<int64_t>(buffer.size()) < size) buffer.resize(static_cast<std::size_t>(size));
  return buffer.data();
}

// ---- convolution -----------------------------------------------------------------------------
struct Conv2dGeometry {
  int64_t batch, in_channels, height, width;
  int64_t out_channels, kernel, stride = 1, padding = 0;
  int64_t out_height() const { return (height + 2 * padding - kernel) / stride + 1; }
  int64_t out_width() const { return (width + 2 * padding - kernel) / stride + 1; }
  int64_t patch_size() const { return in_channels * kernel * kernel; }
};
// One sample's patches into columns [column_offset, column_offset + Ho*Wo) of a (C*k*k, column_count) matrix.
void im2col(double* columns, const double* image, const Conv2dGeometry& g,  // (C*k*k, column_count), (C, H, W)
            int64_t column_count, int64_t column_offset);
// The adjoint of im2col: adds the columns back into one sample's image gradient.
void col2im(double* dimage, const double* columns, const Conv2dGeometry& g,  // (C, H, W), (C*k*k, column_count)
            int64_t column_count, int64_t column_offset);
// The obvious per-element loop, in the same order (so the same bits): the reference col2im is tested against.
void col2im_reference(double* dimage, const double* columns, const Conv2dGeometry& g,  // (C, H, W), (C*k*k, column_count)
                      int64_t column_count, int64_t column_offset);
// out = left · panel: (rows, columns) = (rows, depth) · (depth, columns), the panel's rows `panel_stride` apart. Each
// output is one sum in k order, so the bits do not depend on the register tiling; the reference is the plain triple loop.
struct PanelShape {
  int64_t rows, depth, columns;
  int64_t left_stride, panel_stride;  // row strides of left and panel
  int64_t out_stride = 0;             // out's row stride; 0: `columns`
  int64_t out_row_stride() const { return out_stride > 0 ? out_stride : columns; }
};
void panel_product(double* out, const double* left, const double* panel, const PanelShape& shape);  // (rows, columns), (rows, depth), (depth, columns)
// The plain triple loop, for columns [first_column, columns): the reference, and the fast form's last columns.
void panel_product_reference(double* out, const double* left, const double* panel, const PanelShape& shape, int64_t first_column = 0);
// One sample's patches as the weight gradient reads them: patch row r's value at output position (i, j) is
// values[row_offsets[r] + i·row_width + j]. Stride 1 and same size: the zero-padded image read in place; otherwise
// im2col's columns. In the calling thread's scratch, valid until its next call.
struct Conv2dPatches {
  const double* values;
  const int64_t* row_offsets;  // (C·k·k)
  int64_t row_width;
};
Conv2dPatches conv2d_patches(const double* image, const Conv2dGeometry& g);  // (C, H, W)
// One sample's ∂/∂Wᵀ, (C·k·k, O), from its patches (made once for several output gradients) or its image, and its output
// gradient (O, Ho, Wo). Every entry one sum over the output positions in order: the reference's bits (im2col, then the
// panel's triple loop).
void conv2d_weight_gradient_from_patches(double* transposed_gradient, const Conv2dPatches& patches, const double* dout,  // (C*k*k, O), -, (O, Ho, Wo)
                                         const Conv2dGeometry& g);
void conv2d_weight_gradient_sample(double* transposed_gradient, const double* image, const double* dout,  // (C*k*k, O), (C, H, W), (O, Ho, Wo)
                                   const Conv2dGeometry& g);
void conv2d_weight_gradient_sample_reference(double* transposed_gradient, const double* image, const double* dout,  // (C*k*k, O), (C, H, W), (O, Ho, Wo)
                                             const Conv2dGeometry& g);
// One sample: im2col into the thread's scratch, one panel product straight into out. The batched forms below and the layers'
// segment forms (a weight of their own per sample) call these; samples are independent, so bits never depend on threads.
// Stride 1 and same size: no column panel, the padded image read in place (the same bits).
void conv2d_forward_sample(double* out, const double* image, const double* weight, const double* bias,  // (O, Ho, Wo), (C, H, W), (O, C, k, k), (O)
                           const Conv2dGeometry& g);
// im2col, then the panel's triple loop: the reference for the above.
void conv2d_forward_sample_reference(double* out, const double* image, const double* weight, const double* bias,  // (O, Ho, Wo), (C, H, W), (O, C, k, k), (O)
                                     const Conv2dGeometry& g);
// Wᵀ·dout folded back by col2im, added into one sample's image gradient (add) or written over it (assign: no zero fill
// needed). Stride 1 and same size: without the column panel, offset by offset (the same bits).
enum class Accumulate { add, assign };
void conv2d_backward_input_sample(double* dimage, const double* dout, const double* weight,  // (C, H, W), (O, Ho, Wo), (O, C, k, k)
                                  const Conv2dGeometry& g, Accumulate mode);
// The same from Wᵀ, (C·k·k, O), for callers that form each sample's weight anyway (a segment's W_base + t·W_direction)
// and can write it transposed at no extra pass.
void conv2d_backward_input_sample_transposed(double* dimage, const double* dout, const double* weight_transposed,  // (C, H, W), (O, Ho, Wo), (C*k*k, O)
                                             const Conv2dGeometry& g, Accumulate mode);
// The column panel by the plain triple loop, folded back by the per-element col2im: the reference for the above.
void conv2d_backward_input_sample_reference(double* dimage, const double* dout, const double* weight,  // (C, H, W), (O, Ho, Wo), (O, C, k, k)
                                            const Conv2dGeometry& g, Accumulate mode);
// im2col + one GEMM per sample; samples run in parallel and the weight gradient reduces in sample order.
void conv2d_forward(double* out, const double* inp, const double* weight, const double* bias,  // (N, O, Ho, Wo), (N, C, H, W), (O, C, k, k), (O)
                    const Conv2dGeometry& g);
void conv2d_backward(double* dinp, double* dweight, double* dbias, const double* dout,  // (N, C, H, W), (O, C, k, k), (O), (N, O, Ho, Wo)
                     const double* inp, const double* weight, const Conv2dGeometry& g);
// The slow, obvious direct convolution: the reference the fast version is tested against.
void conv2d_forward_reference(double* out, const double* inp, const double* weight, const double* bias,
                              const Conv2dGeometry& g);
void conv2d_backward_reference(double* dinp, double* dweight, double* dbias, const double* dout,
                               const double* inp, const double* weight, const Conv2dGeometry& g);

// ---- pooling (no padding) --------------------------------------------------------------------
struct Pool2dGeometry {
  int64_t batch, channels, height, width;
  int64_t kernel, stride;
  int64_t out_height() const { return (height - kernel) / stride + 1; }
  int64_t out_width() const { return (width - kernel) / stride + 1; }
};
// argmax receives, per output, the flat input index of the window's maximum; ties go to the first in row-major order.
void maxpool2d_forward(double* out, int64_t* argmax, const double* inp, const Pool2dGeometry& g);  // (N, C, Ho, Wo), (N, C, Ho, Wo), (N, C, H, W)
void maxpool2d_forward_reference(double* out, int64_t* argmax, const double* inp, const Pool2dGeometry& g);  // the same, by branches
void maxpool2d_backward(double* dinp, const double* dout, const int64_t* argmax, const Pool2dGeometry& g);
void avgpool2d_forward(double* out, const double* inp, const Pool2dGeometry& g);
void avgpool2d_backward(double* dinp, const double* dout, const Pool2dGeometry& g);

// ---- losses: the mean over the batch of a per-sample loss --------------------------------------
// Logistic loss on one logit per sample; labels are 0 (negative) or 1 (positive), loss log(1 + exp(-y f)) with y = ±1.
double logistic_loss_forward(const double* logits, const int* labels, int64_t N);  // (N), (N)
void logistic_loss_backward(double* dlogits, double dloss, const double* logits, const int* labels, int64_t N);
// Softmax cross-entropy on C logits per sample, through log-sum-exp.
double cross_entropy_forward(const double* logits, const int* labels, int64_t N, int64_t C);  // (N, C), (N)
void cross_entropy_backward(double* dlogits, double dloss, const double* logits, const int* labels, int64_t N, int64_t C);
// Mean squared error: mean over the batch and the C outputs of (prediction - target)², as PyTorch's MSELoss.
double mse_loss_forward(const double* predictions, const double* targets, int64_t N, int64_t C);  // (N, C), (N, C)
void mse_loss_backward(double* dpredictions, double dloss, const double* predictions, const double* targets, int64_t N, int64_t C);

}  // namespace ks
