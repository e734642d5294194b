/*
 * mnv2_fused.h - one band of a fused inverted residual unit, driven by a plan table.
 *
 * A fused unit reads its input X and writes its output Y (both arena tensors); the wide
 * tensor E between the producer (1x1 expansion, or the convolution before a block
 * without expansion) and the depthwise never exists whole. For each band the plan
 * (mnv2gen.planner.chunking) fixes which rows of E are kept from the previous band,
 * which rows the producer computes, which rows the depthwise reads and which output
 * rows the projection writes. With channel groups the projection sums each group's
 * partial products in int32 and requantises once per band.
 *
 * Activation ops (HARD_SWISH, LOGISTIC) after the producer and after the depthwise run
 * on the rows as they are computed. A squeeze-excite unit runs twice over its bands:
 * mnv2_fused_squeeze_band computes the depthwise output band by band and sums it per
 * channel (writing it whole into the arena when the plan materialises it),
 * mnv2_fused_squeeze_mean turns the sums into the MEAN, the generated code runs the
 * excitation ops on it, and mnv2_fused_band then scales each band of the depthwise output
 * (recomputed, or read back) by the excitation vector before the projection.
 */
#ifndef MNV2_FUSED_H
#define MNV2_FUSED_H

#include <stdint.h>

#include "mnv2_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Row ranges of one band (all counts in rows; see mnv2gen.planner.chunking.Band). */
typedef struct
{
    int16_t out_row;          /**< first output row of the band */
    int16_t out_rows;         /**< output rows written */
    int16_t window_row;       /**< first row of E (or of X without producer) the depthwise reads */
    int16_t window_rows;      /**< rows it reads */
    int16_t window_pad_top;   /**< padding rows above them */
    int16_t keep_from;        /**< window row the kept rows move from */
    int16_t keep_rows;        /**< rows moved to the top of the window */
    int16_t new_rows;         /**< rows of E the producer computes below the kept ones */
    int16_t producer_row;     /**< first row of X the producer reads */
    int16_t producer_rows;    /**< rows it reads */
    int16_t producer_pad_top; /**< padding rows above them */
} mnv2_band;

/** A kernel specialised for one 1x1 convolution (stride 1, no padding) over `pixels`
 *  whole pixels of all its channels (the generated backend's mnv2_kernels.c). */
typedef int32_t (*mnv2_conv_kernel)(const int8_t *input, int8_t *output, int32_t pixels);

/** A kernel specialised for one k x k or depthwise convolution over whole-width rows of a
 *  fused unit's band: input in_rows rows with pad_top padding rows above (rows past them
 *  padding too), output out_rows rows (the generated backend's mnv2_kernels.c). */
typedef int32_t (*mnv2_band_kernel)(const int8_t *input, int32_t in_rows, int32_t pad_top,
                                    int8_t *output, int32_t out_rows);

/** A kernel specialised for one k x k or depthwise convolution computing one output row
 *  of a segment tile: input [in_rows][in_w] pixels with pad_top padding rows above and
 *  pad_left padding columns left of it (rows and columns past it are padding too),
 *  output out_w pixels (the generated backend's mnv2_kernels.c). */
typedef int32_t (*mnv2_window_kernel)(const int8_t *input, int32_t in_rows, int32_t in_w,
                                      int32_t pad_top, int32_t pad_left, int8_t *output,
                                      int32_t out_w);

/** A convolution inside a fused unit; group slices are found from group_start. */
typedef struct
{
    mnv2_conv_params params;   /**< pad_top is taken from the band */
    mnv2_dims filter_dims;     /**< of the whole layer; c (or n) is replaced per group */
    const int8_t *filter;      /**< depthwise and grouped projection: group-major layout */
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
    mnv2_conv_kernel kernel;   /**< segments and fused units of one channel group:
                                    run this instead when set (else 0) */
    mnv2_window_kernel window_kernel; /**< segments, one output row: likewise */
    mnv2_band_kernel band_kernel;     /**< fused units, whole-width rows: likewise */
} mnv2_fused_conv;

/** An activation op inside a fused unit. */
typedef struct
{
    int32_t kind;                      /**< 0 none, 1 HARD_SWISH, 2 LOGISTIC */
    mnv2_hard_swish_params hard_swish; /**< kind 1 */
    mnv2_logistic_params logistic;     /**< kind 2 */
    const int8_t *table;               /**< set: the outputs of all 256 input bytes (the
                                            generated backend), used instead */
} mnv2_fused_act;

/** The squeeze-excite of a fused unit: MEAN of the depthwise output, MUL by a vector. */
typedef struct
{
    int32_t strategy;          /**< 0 none, 1 materialise, 2 recompute */
    int32_t features_offset;   /**< materialise: the whole depthwise output [H][W][C] */
    int32_t sums_offset;       /**< int32 [C] channel sums */
    int32_t mean_offset;       /**< the MEAN's output, int8 [C] */
    int32_t vector_offset;     /**< the excitation vector, int8 [C] */
    int32_t mean_input_offset; /**< MEAN: minus the input zero point times H * W */
    int32_t mean_multiplier;   /**< MEAN: requantisation, divided by H * W */
    int32_t mean_shift;
    int32_t mean_output_offset;
    int32_t features_first;    /**< 1: MUL(features, vector), 0: MUL(vector, features) */
    mnv2_mul_params scale;     /**< the MUL */
} mnv2_fused_se;

/** A fused unit: producer? [-> act] -> depthwise [-> act] [-> SE] -> projection [-> add]. */
typedef struct
{
    int32_t x_offset, y_offset;            /**< arena offsets of input and output */
    int32_t window_offset, dw_out_offset;  /**< arena offsets of scratch bands */
    int32_t shortcut_offset, acc_offset;   /**< projection band (add) and int32 sums (groups) */
    int32_t scratch_offset, scratch_bytes; /**< kernel scratch */
    mnv2_dims x_dims, e_dims, y_dims;      /**< input, wide (depthwise input), output */
    int32_t producer_kind;                 /**< 0 none, 1 conv, 2 depthwise */
    mnv2_fused_conv producer, depthwise, project;
    int32_t has_add;
    mnv2_add_params add;                   /**< input 1 is the unit input X */
    int32_t groups;
    const int16_t *group_start;            /**< groups + 1 channel bounds of E */
    mnv2_fused_act producer_act, depthwise_act;
    mnv2_fused_se se;
} mnv2_fused_unit;

/**
 * @brief Run one band of a fused unit inside the arena.
 * @return MNV2_OK, or the first nonzero kernel status
 */
int32_t mnv2_fused_band(const mnv2_fused_unit *unit, const mnv2_band *band, int8_t *arena);

/**
 * @brief First pass of a squeeze-excite unit over one band: the depthwise output rows,
 *        added to the channel sums (zeroed at the first band).
 * @return MNV2_OK, or the first nonzero kernel status
 */
int32_t mnv2_fused_squeeze_band(const mnv2_fused_unit *unit, const mnv2_band *band, int8_t *arena);

/**
 * @brief The MEAN of a squeeze-excite unit from its channel sums (after the last band).
 * @return MNV2_OK, or MNV2_ARG_ERROR for bad parameters
 */
int32_t mnv2_fused_squeeze_mean(const mnv2_fused_unit *unit, int8_t *arena);

#ifdef __cplusplus
}
#endif

#endif /* MNV2_FUSED_H */
