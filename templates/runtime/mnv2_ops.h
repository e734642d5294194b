/*
 * mnv2_ops.h - int8 operator kernels shared by every model mnv2gen generates.
 *
 * Two implementations of this one API exist and give the same bytes:
 *   mnv2_ops_portable.c  plain C99, TFLite reference semantics, needs no scratch;
 *   mnv2_ops_cmsis.c     calls CMSIS-NN v7 where it has a kernel with the same
 *                        semantics and the portable code elsewhere (it #includes
 *                        mnv2_ops_portable.c: compile exactly one of the two .c files).
 *
 * Conventions (as TFLite Micro and arm_nnfunctions.h):
 *   - Tensors are NHWC, int8, densely packed. A "sub-tensor" (a band of rows, or a
 *     channel group stored contiguously) is passed as its own pointer and dims.
 *   - input_offset is MINUS the input zero point, [-127, 128]; output_offset is the
 *     output zero point, [-128, 127] (both as CMSIS-NN's parameter structs use them).
 *   - A requantisation (multiplier, shift) pair means real ~= multiplier * 2^(shift - 31),
 *     multiplier in [0, 2^31 - 1], shift in [-31, 30], positive = left shift. Rounding
 *     is TFLite's default double rounding (CMSIS_NN_USE_SINGLE_ROUNDING must stay
 *     undefined); mnv2gen.quant computes these pairs.
 *   - activation_min/max: the fused activation clamp, -128 <= min <= max <= 127.
 *   - Accumulators are int32 as in TFLite; sums that overflow int32 are outside the
 *     supported range (they cannot occur for kernels below 2^15 taps x channels).
 *   - Padding is given for the top and left borders only; bottom and right padding is
 *     whatever the output dims imply: filter taps outside the input are skipped (which
 *     is what padding with the input zero point amounts to).
 *   - Unless a function says otherwise, outputs must not overlap inputs. Elementwise
 *     kernels (add, requantize) allow an output that starts at or before an input it
 *     overlaps (same pointer, or trailing it: every element is read before the output
 *     position holding it is written), in both backends.
 *   - scratch: caller-owned working memory, 4-byte aligned, sized with the CMSIS-NN
 *     *_get_buffer_size rule of the target (mnv2gen.planner.scratch). The portable
 *     kernels ignore it (pass NULL, 0). The CMSIS-NN backend returns MNV2_ARG_ERROR
 *     when scratch_bytes is smaller than the CMSIS-NN kernel it dispatches to needs.
 *   - Helium (MVE) builds of CMSIS-NN may read up to 3 elements past the end of the
 *     filter, bias, multiplier and shift arrays of a depthwise convolution whose channel
 *     count is not a multiple of 4 (arm_depthwise_conv_s8_opt); keep such arrays
 *     followed by readable memory (e.g. pad const arrays by 16 bytes).
 *   - Every function returns MNV2_OK (0) or MNV2_ARG_ERROR (nonzero) when an argument
 *     is out of range; no function allocates, uses floating point or keeps state.
 */
#ifndef MNV2_OPS_H
#define MNV2_OPS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MNV2_OK 0
#define MNV2_ARG_ERROR (-1)

/** Tensor dimensions in NHWC order; for filters see each function. */
typedef struct
{
    int32_t n; /**< batches (conv filter: output channels) */
    int32_t h; /**< height */
    int32_t w; /**< width */
    int32_t c; /**< channels */
} mnv2_dims;

/** Parameters of mnv2_conv_s8 and mnv2_depthwise_conv_s8. */
typedef struct
{
    int32_t input_offset;   /**< minus the input zero point, [-127, 128] */
    int32_t output_offset;  /**< the output zero point, [-128, 127] */
    int32_t stride_h;       /**< >= 1 */
    int32_t stride_w;       /**< >= 1 */
    int32_t pad_top;        /**< rows of padding above the input (sub-tensor), >= 0 */
    int32_t pad_left;       /**< columns of padding left of the input, >= 0 */
    int32_t dilation_h;     /**< >= 1 */
    int32_t dilation_w;     /**< >= 1 */
    int32_t activation_min; /**< >= -128 */
    int32_t activation_max; /**< <= 127, >= activation_min */
} mnv2_conv_params;

/** Parameters of mnv2_add_s8 (TFLite's int8 ADD, OpDataAdd). */
typedef struct
{
    int32_t input_1_offset;     /**< minus the zero point of input 1, [-127, 128] */
    int32_t input_1_multiplier; /**< input 1 rescale multiplier */
    int32_t input_1_shift;      /**< input 1 rescale shift, <= 0 */
    int32_t input_2_offset;     /**< minus the zero point of input 2, [-127, 128] */
    int32_t input_2_multiplier; /**< input 2 rescale multiplier */
    int32_t input_2_shift;      /**< input 2 rescale shift, <= 0 */
    int32_t left_shift;         /**< headroom shift applied to both inputs, [0, 23]; TFLite uses 20 */
    int32_t output_offset;      /**< the output zero point, [-128, 127] */
    int32_t output_multiplier;  /**< output rescale multiplier */
    int32_t output_shift;       /**< output rescale shift, <= 0 */
    int32_t activation_min;     /**< >= -128 */
    int32_t activation_max;     /**< <= 127 */
} mnv2_add_params;

/** Parameters of mnv2_avgpool_s8. */
typedef struct
{
    int32_t filter_h;       /**< window height, >= 1 */
    int32_t filter_w;       /**< window width, >= 1 */
    int32_t stride_h;       /**< >= 1 */
    int32_t stride_w;       /**< >= 1 */
    int32_t pad_top;        /**< >= 0 */
    int32_t pad_left;       /**< >= 0 */
    int32_t activation_min; /**< >= -128 */
    int32_t activation_max; /**< <= 127 */
} mnv2_pool_params;

/** Parameters of mnv2_fully_connected_s8. */
typedef struct
{
    int32_t input_offset;   /**< minus the input zero point, [-127, 128] */
    int32_t filter_offset;  /**< minus the filter zero point; 0 for symmetric int8 weights */
    int32_t output_offset;  /**< the output zero point, [-128, 127] */
    int32_t activation_min; /**< >= -128 */
    int32_t activation_max; /**< <= 127 */
} mnv2_fc_params;

/**
 * @brief int8 convolution (TFLite CONV_2D, reference_integer_ops::ConvPerChannel).
 *
 * @param[in]  params            strides, top/left padding, dilation, offsets, clamp
 * @param[in]  output_multiplier per output channel, [output_dims->c]
 * @param[in]  output_shift      per output channel, [output_dims->c]
 * @param[in]  input_dims        [N, H, W, C_IN]; H may be a band of the full input
 * @param[in]  input             int8 input
 * @param[in]  filter_dims       [C_OUT, KH, KW, C_IN]
 * @param[in]  filter            int8 weights, laid out as filter_dims
 * @param[in]  bias              int32 [C_OUT], or NULL for none
 * @param[in]  output_dims       [N, HO, WO, C_OUT]; HO rows are computed, so a band
 *                               at the bottom border simply has fewer input rows
 * @param[out] output            int8 output
 * @param[in]  scratch           working memory (CMSIS-NN: arm_convolve_s8 rule unless
 *                               the filter is 1x1 without padding: then none)
 * @param[in]  scratch_bytes     size of scratch
 * @return MNV2_OK, or MNV2_ARG_ERROR for inconsistent dims or out-of-range params
 */
int32_t mnv2_conv_s8(const mnv2_conv_params *params,
                     const int32_t *output_multiplier,
                     const int32_t *output_shift,
                     const mnv2_dims *input_dims,
                     const int8_t *input,
                     const mnv2_dims *filter_dims,
                     const int8_t *filter,
                     const int32_t *bias,
                     const mnv2_dims *output_dims,
                     int8_t *output,
                     void *scratch,
                     int32_t scratch_bytes);

/**
 * @brief int8 depthwise convolution (TFLite DEPTHWISE_CONV_2D, DepthwiseConvPerChannel).
 *
 * Output channel oc reads input channel oc / ch_mult, where ch_mult = C_OUT / C_IN
 * (C_OUT must be a multiple of C_IN). A channel group is a depthwise of its own: pass
 * the group's channels as a contiguous tensor with the matching filter slice.
 *
 * @param[in]  params            strides, top/left padding, dilation, offsets, clamp
 * @param[in]  output_multiplier per output channel, [C_OUT]
 * @param[in]  output_shift      per output channel, [C_OUT]
 * @param[in]  input_dims        [N, H, W, C_IN]
 * @param[in]  input             int8 input
 * @param[in]  filter_dims       [1, KH, KW, C_OUT]
 * @param[in]  filter            int8 weights, laid out as filter_dims
 * @param[in]  bias              int32 [C_OUT], or NULL for none
 * @param[in]  output_dims       [N, HO, WO, C_OUT]
 * @param[out] output            int8 output
 * @param[in]  scratch           working memory (CMSIS-NN: arm_depthwise_conv_wrapper_s8 rule)
 * @param[in]  scratch_bytes     size of scratch
 * @return MNV2_OK, or MNV2_ARG_ERROR for inconsistent dims or out-of-range params
 */
int32_t mnv2_depthwise_conv_s8(const mnv2_conv_params *params,
                               const int32_t *output_multiplier,
                               const int32_t *output_shift,
                               const mnv2_dims *input_dims,
                               const int8_t *input,
                               const mnv2_dims *filter_dims,
                               const int8_t *filter,
                               const int32_t *bias,
                               const mnv2_dims *output_dims,
                               int8_t *output,
                               void *scratch,
                               int32_t scratch_bytes);

/**
 * @brief int8 elementwise ADD of two tensors of the same shape (TFLite int8 ADD).
 *
 * out = clamp(R_out(R_1((x1 + off1) << left_shift) + R_2((x2 + off2) << left_shift))
 *             + output_offset), each R a (multiplier, shift) requantisation.
 *
 * @param[in]  params     offsets, multipliers, shifts, left_shift, clamp
 * @param[in]  input_1    int8 [block_size]
 * @param[in]  input_2    int8 [block_size]
 * @param[out] output     int8 [block_size]; may start at or before input_1 or input_2
 * @param[in]  block_size number of elements, >= 0
 * @return MNV2_OK, or MNV2_ARG_ERROR for out-of-range params
 */
int32_t mnv2_add_s8(const mnv2_add_params *params,
                    const int8_t *input_1,
                    const int8_t *input_2,
                    int8_t *output,
                    int32_t block_size);

/**
 * @brief int8 average pooling (TFLite AVERAGE_POOL_2D): the mean of the part of each
 *        window inside the input, rounded half away from zero, then clamped.
 *
 * @param[in]  params        window, strides, top/left padding, clamp
 * @param[in]  input_dims    [N, H, W, C]
 * @param[in]  input         int8 input
 * @param[in]  output_dims   [N, HO, WO, C]
 * @param[out] output        int8 output
 * @param[in]  scratch       working memory (CMSIS-NN: arm_avgpool_s8 rule, C * 4 bytes with DSP)
 * @param[in]  scratch_bytes size of scratch
 * @return MNV2_OK, or MNV2_ARG_ERROR for bad dims or a window entirely in padding
 */
int32_t mnv2_avgpool_s8(const mnv2_pool_params *params,
                        const mnv2_dims *input_dims,
                        const int8_t *input,
                        const mnv2_dims *output_dims,
                        int8_t *output,
                        void *scratch,
                        int32_t scratch_bytes);

/**
 * @brief int8 MEAN over one contiguous run of axes (TFLM QuantizedMeanOrSum).
 *
 * The input is viewed as [outer][reduce][inner]; output[o][i] is
 * clamp(R(sum_r input[o][r][i] + input_offset * reduce) + output_offset, -128, 127).
 * MEAN over H and W of NHWC is outer = N, reduce = H * W, inner = C; a single axis k
 * is outer = prod(dims before k), reduce = dim k, inner = prod(dims after k).
 * (multiplier, shift) already include the division by `reduce`: mnv2gen.quant.mean_multiplier.
 *
 * @param[in]  input             int8 [outer * reduce * inner]
 * @param[in]  outer             >= 1
 * @param[in]  reduce            number of elements averaged, >= 1
 * @param[in]  inner             >= 1
 * @param[in]  input_offset      minus the input zero point, [-127, 128]
 * @param[in]  output_multiplier mean multiplier (scale ratio / reduce)
 * @param[in]  output_shift      mean shift
 * @param[in]  output_offset     the output zero point, [-128, 127]
 * @param[out] output            int8 [outer * inner]
 * @return MNV2_OK, or MNV2_ARG_ERROR for non-positive sizes
 */
int32_t mnv2_mean_s8(const int8_t *input,
                     int32_t outer,
                     int32_t reduce,
                     int32_t inner,
                     int32_t input_offset,
                     int32_t output_multiplier,
                     int32_t output_shift,
                     int32_t output_offset,
                     int8_t *output);

/**
 * @brief int8 fully connected layer (TFLite FULLY_CONNECTED), per-tensor or per-channel.
 *
 * output[b][o] = clamp(R_o(bias[o] + sum_i (input[b][i] + input_offset) *
 *                                    (filter[o][i] + filter_offset)) + output_offset)
 *
 * @param[in]  params            offsets and clamp
 * @param[in]  output_multiplier [out_features] when per_channel, else [1]
 * @param[in]  output_shift      [out_features] when per_channel, else [1]
 * @param[in]  per_channel       0: one (multiplier, shift) for all outputs; 1: one per output
 * @param[in]  batches           rows of input and output, >= 1
 * @param[in]  in_features       >= 1
 * @param[in]  input             int8 [batches][in_features]
 * @param[in]  out_features      >= 1
 * @param[in]  filter            int8 [out_features][in_features] (TFLite layout)
 * @param[in]  bias              int32 [out_features], or NULL for none
 * @param[out] output            int8 [batches][out_features]
 * @param[in]  scratch           working memory (CMSIS-NN: arm_fully_connected_s8 rule,
 *                               out_features * 4 bytes on Helium, where the kernel sums
 *                               are computed into it at every call)
 * @param[in]  scratch_bytes     size of scratch
 * @return MNV2_OK, or MNV2_ARG_ERROR for out-of-range params
 */
int32_t mnv2_fully_connected_s8(const mnv2_fc_params *params,
                                const int32_t *output_multiplier,
                                const int32_t *output_shift,
                                int32_t per_channel,
                                int32_t batches,
                                int32_t in_features,
                                const int8_t *input,
                                int32_t out_features,
                                const int8_t *filter,
                                const int32_t *bias,
                                int8_t *output,
                                void *scratch,
                                int32_t scratch_bytes);

/**
 * @brief int8 softmax over rows (TFLite int8 SOFTMAX; output scale 1/256, zero point -128).
 *
 * A row whose sum of exponentials reaches 2^28 (512 or more logits tied at the maximum)
 * makes TFLite's output shift exceed 31, which TFLite asserts against; both backends then
 * continue with exact rounding, as mnv2gen's reference does.
 *
 * @param[in]  input                 int8 [rows][row_size]
 * @param[in]  rows                  >= 0
 * @param[in]  row_size              >= 1
 * @param[in]  input_beta_multiplier from PreprocessSoftmaxScaling (mnv2gen.quant)
 * @param[in]  input_beta_left_shift from PreprocessSoftmaxScaling, [0, 30]
 * @param[in]  diff_min              minus CalculateInputRadius(5, left_shift), <= 0
 * @param[out] output                int8 [rows][row_size]
 * @return MNV2_OK, or MNV2_ARG_ERROR for out-of-range params
 */
int32_t mnv2_softmax_s8(const int8_t *input,
                        int32_t rows,
                        int32_t row_size,
                        int32_t input_beta_multiplier,
                        int32_t input_beta_left_shift,
                        int32_t diff_min,
                        int8_t *output);

/**
 * @brief int8 -> int8 requantisation (TFLite QUANTIZE between integer types, Requantize).
 *
 * out = clamp(R(x + input_offset) + output_offset, -128, 127)
 *
 * @param[in]  input         int8 [block_size]
 * @param[in]  input_offset  minus the input zero point, [-127, 128]
 * @param[in]  multiplier    requantisation multiplier (input scale / output scale)
 * @param[in]  shift         requantisation shift
 * @param[in]  output_offset the output zero point, [-128, 127]
 * @param[out] output        int8 [block_size]; may start at or before input
 * @param[in]  block_size    number of elements, >= 0
 * @return MNV2_OK, or MNV2_ARG_ERROR for a negative block_size
 */
int32_t mnv2_requantize_s8(const int8_t *input,
                           int32_t input_offset,
                           int32_t multiplier,
                           int32_t shift,
                           int32_t output_offset,
                           int8_t *output,
                           int32_t block_size);

/**
 * @brief uint8 -> int8 requantisation (TFLite QUANTIZE of a uint8 model input).
 *
 * As mnv2_requantize_s8, with input_offset in [-255, 0].
 *
 * @param[in]  input         uint8 [block_size]
 * @param[in]  input_offset  minus the input zero point, [-255, 0]
 * @param[in]  multiplier    requantisation multiplier
 * @param[in]  shift         requantisation shift
 * @param[in]  output_offset the output zero point, [-128, 127]
 * @param[out] output        int8 [block_size]; may start at or before input's storage
 * @param[in]  block_size    number of elements, >= 0
 * @return MNV2_OK, or MNV2_ARG_ERROR for a negative block_size
 */
int32_t mnv2_requantize_u8_s8(const uint8_t *input,
                              int32_t input_offset,
                              int32_t multiplier,
                              int32_t shift,
                              int32_t output_offset,
                              int8_t *output,
                              int32_t block_size);

/**
 * @brief Accumulate the partial 1x1 projection of one channel group into int32 sums.
 *
 * acc[p][o] += sum_{k < slice_c} (input[p][k] + input_offset) * filter[o][k].
 * Calling it for every group of the input channels (each with its own contiguous
 * filter block) and then mnv2_requantize_acc_s8 gives mnv2_conv_s8 of a 1x1 stride-1
 * convolution bit for bit. The caller zeroes acc before the first group.
 *
 * @param[in]     input        int8 [pixels][slice_c], the group's channels
 * @param[in]     pixels       number of pixels (rows x width of the band), >= 0
 * @param[in]     slice_c      channels in the group, >= 1
 * @param[in]     input_offset minus the input zero point, [-127, 128]
 * @param[in]     filter       int8 [out_c][slice_c], the group's weights re-laid out
 * @param[in]     out_c        output channels of the projection, >= 1
 * @param[in,out] acc          int32 [pixels][out_c]
 * @return MNV2_OK, or MNV2_ARG_ERROR for non-positive sizes
 */
int32_t mnv2_pointwise_accumulate_s32(const int8_t *input,
                                      int32_t pixels,
                                      int32_t slice_c,
                                      int32_t input_offset,
                                      const int8_t *filter,
                                      int32_t out_c,
                                      int32_t *acc);

/**
 * @brief Requantise int32 projection sums to int8: bias, per-channel rescale, offset, clamp.
 *
 * @param[in]  acc               int32 [pixels][out_c]
 * @param[in]  pixels            >= 0
 * @param[in]  out_c             >= 1
 * @param[in]  bias              int32 [out_c], or NULL for none
 * @param[in]  output_multiplier per output channel, [out_c]
 * @param[in]  output_shift      per output channel, [out_c]
 * @param[in]  output_offset     the output zero point, [-128, 127]
 * @param[in]  activation_min    >= -128
 * @param[in]  activation_max    <= 127
 * @param[out] output            int8 [pixels][out_c]
 * @return MNV2_OK, or MNV2_ARG_ERROR for out-of-range params
 */
int32_t mnv2_requantize_acc_s8(const int32_t *acc,
                               int32_t pixels,
                               int32_t out_c,
                               const int32_t *bias,
                               const int32_t *output_multiplier,
                               const int32_t *output_shift,
                               int32_t output_offset,
                               int32_t activation_min,
                               int32_t activation_max,
                               int8_t *output);

/**
 * @brief Add the channels of int8 pixels to int32 sums: sums[c] += sum_p input[p][c].
 *
 * Streams a global MEAN or AVERAGE_POOL_2D row by row: summing every row of the input
 * this way and then calling mnv2_mean_finish_s8 or mnv2_average_finish_s8 gives
 * mnv2_mean_s8 or mnv2_avgpool_s8 over the whole input bit for bit (sums wrap as int32).
 *
 * @param[in]     input    int8 [pixels][channels]
 * @param[in]     pixels   >= 0
 * @param[in]     channels >= 1
 * @param[in,out] sums     int32 [channels]; the caller zeroes them before the first call
 * @return MNV2_OK, or MNV2_ARG_ERROR for bad sizes
 */
int32_t mnv2_sum_s32(const int8_t *input, int32_t pixels, int32_t channels, int32_t *sums);

/**
 * @brief Finish a global MEAN from its int32 sums (as mnv2_mean_s8 with outer = 1).
 *
 * output[c] = clamp(R(sums[c] + input_offset * reduce) + output_offset, -128, 127).
 *
 * @param[in]  sums              int32 [channels], from mnv2_sum_s32
 * @param[in]  channels          >= 1
 * @param[in]  reduce            number of elements summed per channel, >= 1
 * @param[in]  input_offset      minus the input zero point, [-127, 128]
 * @param[in]  output_multiplier mean multiplier (scale ratio / reduce)
 * @param[in]  output_shift      mean shift
 * @param[in]  output_offset     the output zero point, [-128, 127]
 * @param[out] output            int8 [channels]
 * @return MNV2_OK, or MNV2_ARG_ERROR for bad sizes or offsets
 */
int32_t mnv2_mean_finish_s8(const int32_t *sums,
                            int32_t channels,
                            int32_t reduce,
                            int32_t input_offset,
                            int32_t output_multiplier,
                            int32_t output_shift,
                            int32_t output_offset,
                            int8_t *output);

/**
 * @brief Finish a global AVERAGE_POOL_2D from its int32 sums (as mnv2_avgpool_s8 with
 *        one window covering the input): sums / count rounded half away from zero.
 *
 * @param[in]  sums           int32 [channels], from mnv2_sum_s32
 * @param[in]  channels       >= 1
 * @param[in]  count          pixels summed, >= 1
 * @param[in]  activation_min >= -128
 * @param[in]  activation_max <= 127
 * @param[out] output         int8 [channels]
 * @return MNV2_OK, or MNV2_ARG_ERROR for bad sizes or range
 */
int32_t mnv2_average_finish_s8(const int32_t *sums,
                               int32_t channels,
                               int32_t count,
                               int32_t activation_min,
                               int32_t activation_max,
                               int8_t *output);

#ifdef __cplusplus
}
#endif

#include "mnv2_ops_family.h"

#endif /* MNV2_OPS_H */
