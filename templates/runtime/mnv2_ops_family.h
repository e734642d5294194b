/*
 * mnv2_ops_family.h - kernels of the MobileNet family beyond the classifier core:
 * squeeze-excite and MobileNetV3 activations (MUL, SUB, HARD_SWISH, LOGISTIC), detection
 * and segmentation heads (RESIZE_*, CONCATENATION, MAX_POOL_2D, ARG_MAX), layout
 * (TRANSPOSE) and uint8 edges. Included by mnv2_ops.h; same conventions (see there).
 *
 * Broadcasting: a binary kernel reads its inputs through mnv2_broadcast, the output
 * index space collapsed by mnv2gen to 4 dimensions with one element stride per input
 * and dimension (0 where that input is broadcast). Same-shape inputs are one dimension.
 */
#ifndef MNV2_OPS_FAMILY_H
#define MNV2_OPS_FAMILY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Output index space of a broadcast binary operator. */
typedef struct
{
    int32_t dims[4];     /**< output extent per dimension, outermost first, each >= 1 */
    int32_t stride_1[4]; /**< element stride of input 1 per dimension, 0 = broadcast */
    int32_t stride_2[4]; /**< element stride of input 2 per dimension, 0 = broadcast */
} mnv2_broadcast;

/** Parameters of mnv2_mul_s8 (TFLite int8 MUL, OpDataMul). */
typedef struct
{
    int32_t input_1_offset;    /**< minus the zero point of input 1, [-127, 128] */
    int32_t input_2_offset;    /**< minus the zero point of input 2, [-127, 128] */
    int32_t output_offset;     /**< the output zero point, [-128, 127] */
    int32_t output_multiplier; /**< requantisation of s1 * s2 / s_out */
    int32_t output_shift;      /**< requantisation shift, [-31, 30] */
    int32_t activation_min;    /**< >= -128 */
    int32_t activation_max;    /**< <= 127 */
} mnv2_mul_params;

/** Parameters of mnv2_hard_swish_s8 (TFLite HardSwishParams, 16-bit fixed point). */
typedef struct
{
    int32_t input_zero_point;    /**< [-128, 127] */
    int32_t output_zero_point;   /**< [-128, 127] */
    int32_t reluish_multiplier;  /**< Q0.15, [0, 32767] */
    int32_t reluish_exponent;    /**< [-31, 30] */
    int32_t output_multiplier;   /**< Q0.15, [0, 32767] */
    int32_t output_exponent;     /**< [-31, 0] */
} mnv2_hard_swish_params;

/** Parameters of mnv2_logistic_s8 (TFLM OpDataLogistic for int8). */
typedef struct
{
    int32_t input_zero_point;   /**< [-128, 127] */
    int32_t input_multiplier;   /**< rescales input - zero point to Q4.27 */
    int32_t input_left_shift;   /**< >= 0 (from 31 on the radius is 0: all saturate) */
    int32_t input_range_radius; /**< from it on the output saturates, >= 0 */
} mnv2_logistic_params;

/** Parameters of mnv2_resize_bilinear_s8 (ResizeBilinearInteger). */
typedef struct
{
    int32_t height_scale_10;    /**< input/output height ratio, 10 fractional bits, >= 0 */
    int32_t width_scale_10;     /**< input/output width ratio, 10 fractional bits, >= 0 */
    int32_t half_pixel_centers; /**< 0 or 1 */
} mnv2_resize_params;

/**
 * @brief int8 MUL with broadcast: clamp(R((x1 + off1) * (x2 + off2)) + output_offset).
 * @param[in]  params    offsets, requantisation, clamp
 * @param[in]  broadcast output index space and input strides
 * @param[in]  input_1   int8 input 1
 * @param[in]  input_2   int8 input 2
 * @param[out] output    int8 [prod(dims)]; may be input_1 or input_2 when that input is
 *                       not broadcast (every element is read before it is written)
 * @return MNV2_OK, or MNV2_ARG_ERROR for out-of-range params
 */
int32_t mnv2_mul_s8(const mnv2_mul_params *params, const mnv2_broadcast *broadcast,
                    const int8_t *input_1, const int8_t *input_2, int8_t *output);

/**
 * @brief int8 SUB with broadcast (TFLite int8 SUB: ADD's arithmetic with a difference).
 * @param[in]  params    as mnv2_add_s8 (mnv2gen.quant_params.sub_params)
 * @param[in]  broadcast output index space and input strides
 * @param[out] output    int8 [prod(dims)], same overlap rule as mnv2_mul_s8
 * @return MNV2_OK, or MNV2_ARG_ERROR for out-of-range params
 */
int32_t mnv2_sub_s8(const mnv2_add_params *params, const mnv2_broadcast *broadcast,
                    const int8_t *input_1, const int8_t *input_2, int8_t *output);

/**
 * @brief int8 ADD with broadcast (mnv2_add_s8's arithmetic on broadcast operands).
 */
int32_t mnv2_add_broadcast_s8(const mnv2_add_params *params, const mnv2_broadcast *broadcast,
                              const int8_t *input_1, const int8_t *input_2, int8_t *output);

/**
 * @brief int8 HARD_SWISH, x * relu6(x + 3) / 6 (reference_ops::HardSwish<int8_t>).
 * @param[out] output int8 [size]; may be input
 */
int32_t mnv2_hard_swish_s8(const mnv2_hard_swish_params *params, const int8_t *input,
                           int8_t *output, int32_t size);

/**
 * @brief int8 LOGISTIC (reference_integer_ops::Logistic): output scale 1/256, zp -128.
 * @param[out] output int8 [size]; may be input
 */
int32_t mnv2_logistic_s8(const mnv2_logistic_params *params, const int8_t *input,
                         int8_t *output, int32_t size);

/**
 * @brief int8 RESIZE_BILINEAR of NHWC [N, H, W, C] to [N, HO, WO, C], no rescaling.
 * @param[out] output must not overlap input
 */
int32_t mnv2_resize_bilinear_s8(const mnv2_resize_params *params, const mnv2_dims *input_dims,
                                const int8_t *input, const mnv2_dims *output_dims,
                                int8_t *output);

/**
 * @brief RESIZE_NEAREST_NEIGHBOR: output pixel (y, x) is input pixel (rows[y], cols[x]).
 * @param[in]  rows int32 [output_dims->h], input row per output row
 * @param[in]  cols int32 [output_dims->w], input column per output column
 * @param[out] output must not overlap input
 */
int32_t mnv2_resize_nearest_s8(const mnv2_dims *input_dims, const int8_t *input,
                               const mnv2_dims *output_dims, const int32_t *rows,
                               const int32_t *cols, int8_t *output);

/**
 * @brief int8 MAX_POOL_2D: maximum of the in-image taps of each window, then clamped.
 * @param[in] scratch unused by both backends (pass NULL, 0)
 */
int32_t mnv2_max_pool_s8(const mnv2_pool_params *params, const mnv2_dims *input_dims,
                         const int8_t *input, const mnv2_dims *output_dims, int8_t *output,
                         void *scratch, int32_t scratch_bytes);

/**
 * @brief Copy `count` blocks of `block_bytes`, the k-th to output + k * output_stride_bytes
 *        (one CONCATENATION input into its slice of the output, any element type).
 * @param[out] output must not overlap input
 */
int32_t mnv2_copy_blocks(const void *input, void *output, int32_t count, int32_t block_bytes,
                         int32_t output_stride_bytes);

/**
 * @brief ARG_MAX of int8 [outer][axis_size][inner] along the middle axis; the first
 *        maximum wins. mnv2_arg_max_s8_s32 writes int32 indices, _s64 int64.
 * @param[out] output [outer][inner]; must not overlap input
 */
int32_t mnv2_arg_max_s8_s32(const int8_t *input, int32_t outer, int32_t axis_size,
                            int32_t inner, int32_t *output);
int32_t mnv2_arg_max_s8_s64(const int8_t *input, int32_t outer, int32_t axis_size,
                            int32_t inner, int64_t *output);

/**
 * @brief TRANSPOSE of a 4-D int8 tensor: output dim i is input dim perm[i].
 * @param[out] output must not overlap input
 */
int32_t mnv2_transpose_s8(const int8_t *input, const mnv2_dims *input_dims,
                          const int32_t perm[4], int8_t *output);

/**
 * @brief PAD of a 4-D int8 tensor with `value` (the zero point): output dims are
 *        input dims + before + after per dimension.
 * @param[out] output must not overlap input
 */
int32_t mnv2_pad_s8(const int8_t *input, const mnv2_dims *input_dims, const int32_t before[4],
                    const int32_t after[4], int32_t value, int8_t *output);

/**
 * @brief int8 -> uint8 requantisation (TFLite QUANTIZE to a uint8 model output).
 * @param[in]  input_offset  minus the input zero point, [-127, 128]
 * @param[in]  output_offset the output zero point, [0, 255]
 * @param[out] output        uint8 [block_size]; may start at or before input's storage
 */
int32_t mnv2_requantize_s8_u8(const int8_t *input, int32_t input_offset, int32_t multiplier,
                              int32_t shift, int32_t output_offset, uint8_t *output,
                              int32_t block_size);

#ifdef __cplusplus
}
#endif

#endif /* MNV2_OPS_FAMILY_H */
