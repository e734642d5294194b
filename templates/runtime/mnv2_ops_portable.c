/*
 * mnv2_ops_portable.c - plain C99 implementation of mnv2_ops.h.
 *
 * Integer semantics of TFLite Micro's reference kernels with the default double
 * rounding, bit for bit (checked against mnv2gen's NumPy reference by
 * tests/test_c_kernels.py). No heap, no floating point, no scratch, no state.
 *
 * Assumes what GCC, Clang and Arm Compiler guarantee: >> of a negative integer is an
 * arithmetic shift and converting an out-of-range value to a signed type wraps.
 *
 * mnv2_ops_cmsis.c defines MNV2_OPS_CMSIS_NN and #includes this file: the kernels it
 * replaces with CMSIS-NN calls (those defined through MNV2_KERNEL) are then compiled
 * as mnv2_portable_<name>, which the CMSIS-NN backend calls where CMSIS-NN differs.
 */
#include "mnv2_ops.h"

#include <stddef.h>

#ifdef MNV2_OPS_CMSIS_NN
#define MNV2_KERNEL(name) mnv2_portable_##name
#else
#define MNV2_KERNEL(name) mnv2_##name
#endif

/* Output channels a depthwise or pooling pass accumulates at once, on the stack. */
#define MNV2_CHANNEL_BLOCK 32

/* Integer bits of the softmax's sum of exponentials (TFLite's kAccumulationIntegerBits). */
#define MNV2_SOFTMAX_ACCUM_BITS 12

/* ---------------------------------------------------------------- fixed-point math */

/* Rounding doubling high multiply for multiplier >= 0 (the INT32_MIN * INT32_MIN
 * saturation of gemmlowp cannot occur): round(a * b / 2^31), ties toward +infinity.
 * floor((ab + 2^30) / 2^31) equals gemmlowp's sign-dependent nudge and truncation. */
static inline int32_t mnv2_high_mul(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 30)) >> 31);
}

/* gemmlowp SaturatingRoundingDoublingHighMul (any signs). */
static inline int32_t mnv2_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
    {
        return INT32_MAX;
    }
    return mnv2_high_mul(a, b);
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero, exponent in [0, 31]. */
static inline int32_t mnv2_rounding_divide(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t threshold = (mask >> 1) + (x < 0);
    return (x >> exponent) + ((x & mask) > threshold);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent in [1, 30]. */
static inline int32_t mnv2_saturating_left_shift(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold)
    {
        return INT32_MAX;
    }
    if (x < -threshold)
    {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* TFLite MultiplyByQuantizedMultiplier (int32, double rounding). The left shift wraps
 * like TFLite's x * (1 << shift). */
static inline int32_t mnv2_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return mnv2_rounding_divide(mnv2_high_mul((int32_t)((uint32_t)x << left), multiplier), right);
}

static inline int32_t mnv2_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

static inline int32_t mnv2_min(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

static inline int32_t mnv2_max(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

/* ---------------------------------------------------------------- argument checks */

static int32_t mnv2_dims_ok(const mnv2_dims *d)
{
    return d->n > 0 && d->h > 0 && d->w > 0 && d->c > 0;
}

static int32_t mnv2_range_ok(int32_t lo, int32_t hi)
{
    return -128 <= lo && lo <= hi && hi <= 127;
}

static int32_t mnv2_offsets_ok(int32_t input_offset, int32_t output_offset)
{
    return -127 <= input_offset && input_offset <= 128 && -128 <= output_offset && output_offset <= 127;
}

/* Checks shared by both conv kernels and both backends; out_c_of_filter is the filter
 * dimension that must equal the output channels. */
static int32_t mnv2_check_conv(const mnv2_conv_params *p,
                               const mnv2_dims *input_dims,
                               const mnv2_dims *filter_dims,
                               const mnv2_dims *output_dims,
                               int32_t out_c_of_filter)
{
    if (!mnv2_dims_ok(input_dims) || !mnv2_dims_ok(filter_dims) || !mnv2_dims_ok(output_dims) ||
        input_dims->n != output_dims->n || out_c_of_filter != output_dims->c || p->stride_h < 1 ||
        p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1 || p->pad_top < 0 || p->pad_left < 0 ||
        !mnv2_offsets_ok(p->input_offset, p->output_offset) || !mnv2_range_ok(p->activation_min, p->activation_max))
    {
        return MNV2_ARG_ERROR;
    }
    return MNV2_OK;
}

static int32_t mnv2_check_conv_s8(const mnv2_conv_params *p,
                                  const mnv2_dims *input_dims,
                                  const mnv2_dims *filter_dims,
                                  const mnv2_dims *output_dims)
{
    if (mnv2_check_conv(p, input_dims, filter_dims, output_dims, filter_dims->n) != MNV2_OK ||
        filter_dims->c != input_dims->c)
    {
        return MNV2_ARG_ERROR;
    }
    return MNV2_OK;
}

static int32_t mnv2_check_depthwise_s8(const mnv2_conv_params *p,
                                       const mnv2_dims *input_dims,
                                       const mnv2_dims *filter_dims,
                                       const mnv2_dims *output_dims)
{
    if (mnv2_check_conv(p, input_dims, filter_dims, output_dims, filter_dims->c) != MNV2_OK ||
        filter_dims->n != 1 || output_dims->c % input_dims->c != 0)
    {
        return MNV2_ARG_ERROR;
    }
    return MNV2_OK;
}

static int32_t mnv2_check_add(const mnv2_add_params *p, int32_t block_size)
{
    if (block_size < 0 || p->left_shift < 0 || p->left_shift > 23 || p->input_1_shift > 0 || p->input_2_shift > 0 ||
        p->output_shift > 0 || !mnv2_offsets_ok(p->input_1_offset, p->output_offset) ||
        !mnv2_offsets_ok(p->input_2_offset, p->output_offset) || !mnv2_range_ok(p->activation_min, p->activation_max))
    {
        return MNV2_ARG_ERROR;
    }
    return MNV2_OK;
}

static int32_t mnv2_check_pool(const mnv2_pool_params *p, const mnv2_dims *input_dims, const mnv2_dims *output_dims)
{
    if (!mnv2_dims_ok(input_dims) || !mnv2_dims_ok(output_dims) || input_dims->n != output_dims->n ||
        input_dims->c != output_dims->c || p->filter_h < 1 || p->filter_w < 1 || p->stride_h < 1 || p->stride_w < 1 ||
        p->pad_top < 0 || p->pad_left < 0 || !mnv2_range_ok(p->activation_min, p->activation_max))
    {
        return MNV2_ARG_ERROR;
    }
    return MNV2_OK;
}

static int32_t mnv2_check_fc(const mnv2_fc_params *p,
                             int32_t per_channel,
                             int32_t batches,
                             int32_t in_features,
                             int32_t out_features)
{
    if (batches < 1 || in_features < 1 || out_features < 1 || (per_channel != 0 && per_channel != 1) ||
        p->filter_offset < -127 || p->filter_offset > 128 || !mnv2_offsets_ok(p->input_offset, p->output_offset) ||
        !mnv2_range_ok(p->activation_min, p->activation_max))
    {
        return MNV2_ARG_ERROR;
    }
    return MNV2_OK;
}

static int32_t mnv2_check_softmax(int32_t rows, int32_t row_size, int32_t left_shift, int32_t diff_min)
{
    if (rows < 0 || row_size < 1 || left_shift < 0 || left_shift > 30 || diff_min > 0)
    {
        return MNV2_ARG_ERROR;
    }
    return MNV2_OK;
}

/* First tap index k in [0, kernel) with 0 <= origin + k * dilation < size, and one past
 * the last; first >= end when no tap is inside. */
static void mnv2_tap_range(
    int32_t origin, int32_t dilation, int32_t kernel, int32_t size, int32_t *first, int32_t *end)
{
    const int32_t lo = origin < 0 ? (-origin + dilation - 1) / dilation : 0;
    const int32_t hi = origin < size ? (size - 1 - origin) / dilation + 1 : 0;
    *first = lo;
    *end = mnv2_min(kernel, hi);
}

/* ---------------------------------------------------------------- convolutions */

int32_t MNV2_KERNEL(conv_s8)(const mnv2_conv_params *params,
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
                             int32_t scratch_bytes)
{
    (void)scratch;
    (void)scratch_bytes;
    if (mnv2_check_conv_s8(params, input_dims, filter_dims, output_dims) != MNV2_OK)
    {
        return MNV2_ARG_ERROR;
    }
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t kh = filter_dims->h, kw = filter_dims->w, out_c = output_dims->c;
    const int32_t input_offset = params->input_offset;
    const int32_t filter_size = kh * kw * in_c;

    for (int32_t b = 0; b < input_dims->n; ++b)
    {
        const int8_t *in_batch = input + (size_t)b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < output_dims->h; ++oy)
        {
            const int32_t iy0 = oy * params->stride_h - params->pad_top;
            int32_t ky0, ky1;
            mnv2_tap_range(iy0, params->dilation_h, kh, in_h, &ky0, &ky1);
            for (int32_t ox = 0; ox < output_dims->w; ++ox)
            {
                const int32_t ix0 = ox * params->stride_w - params->pad_left;
                int32_t kx0, kx1;
                mnv2_tap_range(ix0, params->dilation_w, kw, in_w, &kx0, &kx1);
                for (int32_t oc = 0; oc < out_c; ++oc)
                {
                    const int8_t *w_oc = filter + (size_t)oc * filter_size;
                    int32_t acc = bias != NULL ? bias[oc] : 0;
                    for (int32_t ky = ky0; ky < ky1; ++ky)
                    {
                        const int8_t *in_row = in_batch + (size_t)(iy0 + ky * params->dilation_h) * in_w * in_c;
                        for (int32_t kx = kx0; kx < kx1; ++kx)
                        {
                            const int8_t *x = in_row + (size_t)(ix0 + kx * params->dilation_w) * in_c;
                            const int8_t *w = w_oc + (size_t)(ky * kw + kx) * in_c;
                            for (int32_t i = 0; i < in_c; ++i)
                            {
                                acc += (x[i] + input_offset) * w[i];
                            }
                        }
                    }
                    acc = mnv2_requantize(acc, output_multiplier[oc], output_shift[oc]) + params->output_offset;
                    *output++ = (int8_t)mnv2_clamp(acc, params->activation_min, params->activation_max);
                }
            }
        }
    }
    return MNV2_OK;
}

int32_t MNV2_KERNEL(depthwise_conv_s8)(const mnv2_conv_params *params,
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
                                       int32_t scratch_bytes)
{
    (void)scratch;
    (void)scratch_bytes;
    if (mnv2_check_depthwise_s8(params, input_dims, filter_dims, output_dims) != MNV2_OK)
    {
        return MNV2_ARG_ERROR;
    }
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t kh = filter_dims->h, kw = filter_dims->w, out_c = output_dims->c;
    const int32_t ch_mult = out_c / in_c;
    const int32_t input_offset = params->input_offset;
    int32_t acc[MNV2_CHANNEL_BLOCK];

    for (int32_t b = 0; b < input_dims->n; ++b)
    {
        const int8_t *in_batch = input + (size_t)b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < output_dims->h; ++oy)
        {
            const int32_t iy0 = oy * params->stride_h - params->pad_top;
            int32_t ky0, ky1;
            mnv2_tap_range(iy0, params->dilation_h, kh, in_h, &ky0, &ky1);
            for (int32_t ox = 0; ox < output_dims->w; ++ox)
            {
                const int32_t ix0 = ox * params->stride_w - params->pad_left;
                int32_t kx0, kx1;
                mnv2_tap_range(ix0, params->dilation_w, kw, in_w, &kx0, &kx1);
                for (int32_t oc0 = 0; oc0 < out_c; oc0 += MNV2_CHANNEL_BLOCK)
                {
                    const int32_t count = mnv2_min(MNV2_CHANNEL_BLOCK, out_c - oc0);
                    for (int32_t k = 0; k < count; ++k)
                    {
                        acc[k] = bias != NULL ? bias[oc0 + k] : 0;
                    }
                    for (int32_t ky = ky0; ky < ky1; ++ky)
                    {
                        const int32_t iy = iy0 + ky * params->dilation_h;
                        for (int32_t kx = kx0; kx < kx1; ++kx)
                        {
                            const int32_t ix = ix0 + kx * params->dilation_w;
                            const int8_t *w = filter + (size_t)(ky * kw + kx) * out_c + oc0;
                            const int8_t *x = in_batch + ((size_t)iy * in_w + ix) * in_c;
                            if (ch_mult == 1)
                            {
                                x += oc0;
                                for (int32_t k = 0; k < count; ++k)
                                {
                                    acc[k] += (x[k] + input_offset) * w[k];
                                }
                            }
                            else
                            {
                                int32_t ic = oc0 / ch_mult, j = oc0 % ch_mult;
                                for (int32_t k = 0; k < count; ++k)
                                {
                                    acc[k] += (x[ic] + input_offset) * w[k];
                                    if (++j == ch_mult)
                                    {
                                        j = 0;
                                        ++ic;
                                    }
                                }
                            }
                        }
                    }
                    for (int32_t k = 0; k < count; ++k)
                    {
                        const int32_t oc = oc0 + k;
                        const int32_t out =
                            mnv2_requantize(acc[k], output_multiplier[oc], output_shift[oc]) + params->output_offset;
                        *output++ = (int8_t)mnv2_clamp(out, params->activation_min, params->activation_max);
                    }
                }
            }
        }
    }
    return MNV2_OK;
}

/* ---------------------------------------------------------------- elementwise */

int32_t MNV2_KERNEL(add_s8)(
    const mnv2_add_params *params, const int8_t *input_1, const int8_t *input_2, int8_t *output, int32_t block_size)
{
    if (mnv2_check_add(params, block_size) != MNV2_OK)
    {
        return MNV2_ARG_ERROR;
    }
    const mnv2_add_params p = *params;
    for (int32_t i = 0; i < block_size; ++i)
    {
        const int32_t x1 = (input_1[i] + p.input_1_offset) * (1 << p.left_shift);
        const int32_t x2 = (input_2[i] + p.input_2_offset) * (1 << p.left_shift);
        const int32_t sum = mnv2_requantize(x1, p.input_1_multiplier, p.input_1_shift) +
            mnv2_requantize(x2, p.input_2_multiplier, p.input_2_shift);
        const int32_t out = mnv2_requantize(sum, p.output_multiplier, p.output_shift) + p.output_offset;
        output[i] = (int8_t)mnv2_clamp(out, p.activation_min, p.activation_max);
    }
    return MNV2_OK;
}

int32_t mnv2_requantize_s8(const int8_t *input,
                           int32_t input_offset,
                           int32_t multiplier,
                           int32_t shift,
                           int32_t output_offset,
                           int8_t *output,
                           int32_t block_size)
{
    if (block_size < 0)
    {
        return MNV2_ARG_ERROR;
    }
    for (int32_t i = 0; i < block_size; ++i)
    {
        const int32_t out = mnv2_requantize(input[i] + input_offset, multiplier, shift) + output_offset;
        output[i] = (int8_t)mnv2_clamp(out, -128, 127);
    }
    return MNV2_OK;
}

int32_t mnv2_requantize_u8_s8(const uint8_t *input,
                              int32_t input_offset,
                              int32_t multiplier,
                              int32_t shift,
                              int32_t output_offset,
                              int8_t *output,
                              int32_t block_size)
{
    if (block_size < 0)
    {
        return MNV2_ARG_ERROR;
    }
    for (int32_t i = 0; i < block_size; ++i)
    {
        /* Read before the write: input and output may share storage. */
        const int32_t x = input[i];
        const int32_t out = mnv2_requantize(x + input_offset, multiplier, shift) + output_offset;
        output[i] = (int8_t)mnv2_clamp(out, -128, 127);
    }
    return MNV2_OK;
}

/* ---------------------------------------------------------------- pooling and MEAN */

int32_t MNV2_KERNEL(avgpool_s8)(const mnv2_pool_params *params,
                                const mnv2_dims *input_dims,
                                const int8_t *input,
                                const mnv2_dims *output_dims,
                                int8_t *output,
                                void *scratch,
                                int32_t scratch_bytes)
{
    (void)scratch;
    (void)scratch_bytes;
    if (mnv2_check_pool(params, input_dims, output_dims) != MNV2_OK)
    {
        return MNV2_ARG_ERROR;
    }
    const int32_t in_h = input_dims->h, in_w = input_dims->w, channels = input_dims->c;
    int32_t acc[MNV2_CHANNEL_BLOCK];

    for (int32_t b = 0; b < input_dims->n; ++b)
    {
        const int8_t *in_batch = input + (size_t)b * in_h * in_w * channels;
        for (int32_t oy = 0; oy < output_dims->h; ++oy)
        {
            const int32_t iy0 = oy * params->stride_h - params->pad_top;
            int32_t ky0, ky1;
            mnv2_tap_range(iy0, 1, params->filter_h, in_h, &ky0, &ky1);
            for (int32_t ox = 0; ox < output_dims->w; ++ox)
            {
                const int32_t ix0 = ox * params->stride_w - params->pad_left;
                int32_t kx0, kx1;
                mnv2_tap_range(ix0, 1, params->filter_w, in_w, &kx0, &kx1);
                if (ky1 <= ky0 || kx1 <= kx0)
                {
                    return MNV2_ARG_ERROR; /* window entirely in padding */
                }
                const int32_t count = (ky1 - ky0) * (kx1 - kx0);
                for (int32_t c0 = 0; c0 < channels; c0 += MNV2_CHANNEL_BLOCK)
                {
                    const int32_t block = mnv2_min(MNV2_CHANNEL_BLOCK, channels - c0);
                    for (int32_t k = 0; k < block; ++k)
                    {
                        acc[k] = 0;
                    }
                    for (int32_t ky = ky0; ky < ky1; ++ky)
                    {
                        for (int32_t kx = kx0; kx < kx1; ++kx)
                        {
                            const int8_t *x = in_batch + ((size_t)(iy0 + ky) * in_w + (ix0 + kx)) * channels + c0;
                            for (int32_t k = 0; k < block; ++k)
                            {
                                acc[k] += x[k];
                            }
                        }
                    }
                    for (int32_t k = 0; k < block; ++k)
                    {
                        /* TFLite's rounding: half away from zero, with C's truncating division. */
                        const int32_t avg =
                            acc[k] > 0 ? (acc[k] + count / 2) / count : (acc[k] - count / 2) / count;
                        *output++ = (int8_t)mnv2_clamp(avg, params->activation_min, params->activation_max);
                    }
                }
            }
        }
    }
    return MNV2_OK;
}

int32_t mnv2_mean_s8(const int8_t *input,
                     int32_t outer,
                     int32_t reduce,
                     int32_t inner,
                     int32_t input_offset,
                     int32_t output_multiplier,
                     int32_t output_shift,
                     int32_t output_offset,
                     int8_t *output)
{
    if (outer < 1 || reduce < 1 || inner < 1 || !mnv2_offsets_ok(input_offset, output_offset))
    {
        return MNV2_ARG_ERROR;
    }
    /* TFLM subtracts zero_point * count from the int32 sum in 64 bits, then narrows. */
    const int32_t offset_total = (int32_t)((int64_t)input_offset * reduce);
    for (int32_t o = 0; o < outer; ++o)
    {
        const int8_t *slab = input + (size_t)o * reduce * inner;
        for (int32_t i = 0; i < inner; ++i)
        {
            int32_t sum = 0;
            for (int32_t r = 0; r < reduce; ++r)
            {
                sum += slab[(size_t)r * inner + i];
            }
            const int32_t shifted = (int32_t)((uint32_t)sum + (uint32_t)offset_total);
            const int32_t out = mnv2_requantize(shifted, output_multiplier, output_shift) + output_offset;
            *output++ = (int8_t)mnv2_clamp(out, -128, 127);
        }
    }
    return MNV2_OK;
}

/* ---------------------------------------------------------------- fully connected */

int32_t MNV2_KERNEL(fully_connected_s8)(const mnv2_fc_params *params,
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
                                        int32_t scratch_bytes)
{
    (void)scratch;
    (void)scratch_bytes;
    if (mnv2_check_fc(params, per_channel, batches, in_features, out_features) != MNV2_OK)
    {
        return MNV2_ARG_ERROR;
    }
    const int32_t input_offset = params->input_offset, filter_offset = params->filter_offset;
    for (int32_t b = 0; b < batches; ++b)
    {
        const int8_t *x = input + (size_t)b * in_features;
        for (int32_t o = 0; o < out_features; ++o)
        {
            const int8_t *w = filter + (size_t)o * in_features;
            int32_t acc = bias != NULL ? bias[o] : 0;
            for (int32_t i = 0; i < in_features; ++i)
            {
                acc += (x[i] + input_offset) * (w[i] + filter_offset);
            }
            const int32_t q = per_channel ? o : 0;
            acc = mnv2_requantize(acc, output_multiplier[q], output_shift[q]) + params->output_offset;
            *output++ = (int8_t)mnv2_clamp(acc, params->activation_min, params->activation_max);
        }
    }
    return MNV2_OK;
}

/* ---------------------------------------------------------------- softmax */

/* gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl, Q0.31 in and out. */
static int32_t mnv2_exp_on_interval(int32_t a)
{
    const int32_t constant_term = 1895147668;  /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = a + (1 << 28); /* Taylor series around -1/8 */
    const int32_t x2 = mnv2_srdhm(x, x);
    const int32_t x3 = mnv2_srdhm(x2, x);
    const int32_t x4_over_4 = mnv2_rounding_divide(mnv2_srdhm(x2, x2), 2);
    const int32_t poly = mnv2_rounding_divide(mnv2_srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1);
    return constant_term + mnv2_srdhm(constant_term, x + poly);
}

/* gemmlowp exp_on_negative_values for Q5.26 input a <= 0; Q0.31 result. */
static int32_t mnv2_exp_on_negative_values(int32_t a)
{
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t quarter = 1 << 24;
    const int32_t a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter;
    int32_t result = mnv2_exp_on_interval(mnv2_saturating_left_shift(a_mod_quarter_minus_quarter, 5));
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    for (int32_t k = 0; k < 7; ++k)
    {
        /* bit 24 + k of the remainder stands for exp(-2^(k - 2)) */
        if (remainder & (1 << (24 + k)))
        {
            result = mnv2_srdhm(result, barrel[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 in, Q0.31 out (Newton-Raphson). */
static int32_t mnv2_one_over_one_plus_x(int32_t a)
{
    const int64_t total = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((total + (total >= 0 ? 1 : -1)) / 2);
    int32_t x = 1515870810 + mnv2_srdhm(half_denominator, -1010580540); /* 48/17 - 32/17 d, Q2.29 */
    for (int32_t i = 0; i < 3; ++i)
    {
        const int32_t one_minus = (1 << 29) - mnv2_srdhm(half_denominator, x);
        x = x + mnv2_saturating_left_shift(mnv2_srdhm(x, one_minus), 2);
    }
    return mnv2_saturating_left_shift(x, 1);
}

/* RoundingDivideByPOT in 64 bits for the softmax output: its exponent exceeds 31 once a
 * row's sum of exponentials reaches 2^28 (512 or more logits tied at the maximum), where
 * TFLite asserts; mnv2gen's reference continues with exact rounding, and so does this. */
static int32_t mnv2_rounding_divide_wide(int32_t x, int32_t exponent)
{
    const int64_t mask = ((int64_t)1 << exponent) - 1;
    const int64_t threshold = (mask >> 1) + (x < 0);
    return (int32_t)(((int64_t)x >> exponent) + (((int64_t)x & mask) > threshold));
}

/* exp of a (non-positive) logit difference scaled by beta: Q5.26 in, Q0.31 out. */
static int32_t mnv2_softmax_exp(int32_t diff, int32_t multiplier, int32_t left_shift)
{
    return mnv2_exp_on_negative_values(mnv2_srdhm((int32_t)((uint32_t)diff << left_shift), multiplier));
}

static int32_t mnv2_count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    if (x == 0)
    {
        return 32;
    }
    while (!(x & 0x80000000u))
    {
        x <<= 1;
        ++n;
    }
    return n;
}

int32_t MNV2_KERNEL(softmax_s8)(const int8_t *input,
                                int32_t rows,
                                int32_t row_size,
                                int32_t input_beta_multiplier,
                                int32_t input_beta_left_shift,
                                int32_t diff_min,
                                int8_t *output)
{
    if (mnv2_check_softmax(rows, row_size, input_beta_left_shift, diff_min) != MNV2_OK)
    {
        return MNV2_ARG_ERROR;
    }
    for (int32_t r = 0; r < rows; ++r)
    {
        const int8_t *x = input + (size_t)r * row_size;
        int8_t *y = output + (size_t)r * row_size;
        int32_t max = x[0];
        for (int32_t i = 1; i < row_size; ++i)
        {
            max = mnv2_max(max, x[i]);
        }
        uint32_t sum = 0; /* TFLite reads its int32 sum as uint32 (rows of 4096+ can wrap) */
        for (int32_t i = 0; i < row_size; ++i)
        {
            const int32_t diff = x[i] - max;
            if (diff >= diff_min)
            {
                const int32_t exp = mnv2_softmax_exp(diff, input_beta_multiplier, input_beta_left_shift);
                sum += (uint32_t)mnv2_rounding_divide(exp, MNV2_SOFTMAX_ACCUM_BITS);
            }
        }
        /* GetReciprocal: normalise the Q12.19 sum to [1, 2) and invert it. */
        const int32_t headroom_plus_one = mnv2_count_leading_zeros(sum);
        const int32_t num_bits_over_unit = MNV2_SOFTMAX_ACCUM_BITS - headroom_plus_one;
        const int32_t shifted_sum_minus_one = (int32_t)((sum << headroom_plus_one) - 0x80000000u);
        const int32_t reciprocal = mnv2_one_over_one_plus_x(shifted_sum_minus_one);
        const int32_t exponent = num_bits_over_unit + 31 - 8;
        for (int32_t i = 0; i < row_size; ++i)
        {
            const int32_t diff = x[i] - max;
            if (diff >= diff_min)
            {
                const int32_t exp = mnv2_softmax_exp(diff, input_beta_multiplier, input_beta_left_shift);
                const int32_t out = mnv2_rounding_divide_wide(mnv2_srdhm(reciprocal, exp), exponent) - 128;
                y[i] = (int8_t)mnv2_clamp(out, -128, 127);
            }
            else
            {
                y[i] = -128;
            }
        }
    }
    return MNV2_OK;
}

/* ---------------------------------------------------------------- channel-group projection */

int32_t mnv2_pointwise_accumulate_s32(const int8_t *input,
                                      int32_t pixels,
                                      int32_t slice_c,
                                      int32_t input_offset,
                                      const int8_t *filter,
                                      int32_t out_c,
                                      int32_t *acc)
{
    if (pixels < 0 || slice_c < 1 || out_c < 1 || input_offset < -127 || input_offset > 128)
    {
        return MNV2_ARG_ERROR;
    }
    for (int32_t p = 0; p < pixels; ++p)
    {
        const int8_t *x = input + (size_t)p * slice_c;
        int32_t *acc_p = acc + (size_t)p * out_c;
        for (int32_t o = 0; o < out_c; ++o)
        {
            const int8_t *w = filter + (size_t)o * slice_c;
            int32_t sum = 0;
            for (int32_t k = 0; k < slice_c; ++k)
            {
                sum += (x[k] + input_offset) * w[k];
            }
            acc_p[o] = (int32_t)((uint32_t)acc_p[o] + (uint32_t)sum); /* wraps as int32 */
        }
    }
    return MNV2_OK;
}

int32_t mnv2_requantize_acc_s8(const int32_t *acc,
                               int32_t pixels,
                               int32_t out_c,
                               const int32_t *bias,
                               const int32_t *output_multiplier,
                               const int32_t *output_shift,
                               int32_t output_offset,
                               int32_t activation_min,
                               int32_t activation_max,
                               int8_t *output)
{
    if (pixels < 0 || out_c < 1 || output_offset < -128 || output_offset > 127 ||
        !mnv2_range_ok(activation_min, activation_max))
    {
        return MNV2_ARG_ERROR;
    }
    for (int32_t p = 0; p < pixels; ++p)
    {
        for (int32_t o = 0; o < out_c; ++o)
        {
            const int32_t total = (int32_t)((uint32_t)*acc++ + (uint32_t)(bias != NULL ? bias[o] : 0));
            const int32_t out = mnv2_requantize(total, output_multiplier[o], output_shift[o]) + output_offset;
            *output++ = (int8_t)mnv2_clamp(out, activation_min, activation_max);
        }
    }
    return MNV2_OK;
}

/* ---------------------------------------------------------------- streamed global pooling */

int32_t mnv2_sum_s32(const int8_t *input, int32_t pixels, int32_t channels, int32_t *sums)
{
    if (pixels < 0 || channels < 1)
    {
        return MNV2_ARG_ERROR;
    }
    for (int32_t p = 0; p < pixels; ++p)
    {
        const int8_t *x = input + (size_t)p * channels;
        for (int32_t c = 0; c < channels; ++c)
        {
            sums[c] = (int32_t)((uint32_t)sums[c] + (uint32_t)(int32_t)x[c]); /* wraps as int32 */
        }
    }
    return MNV2_OK;
}

int32_t mnv2_mean_finish_s8(const int32_t *sums,
                            int32_t channels,
                            int32_t reduce,
                            int32_t input_offset,
                            int32_t output_multiplier,
                            int32_t output_shift,
                            int32_t output_offset,
                            int8_t *output)
{
    if (channels < 1 || reduce < 1 || !mnv2_offsets_ok(input_offset, output_offset))
    {
        return MNV2_ARG_ERROR;
    }
    const int32_t offset_total = (int32_t)((int64_t)input_offset * reduce);
    for (int32_t c = 0; c < channels; ++c)
    {
        const int32_t shifted = (int32_t)((uint32_t)sums[c] + (uint32_t)offset_total);
        const int32_t out = mnv2_requantize(shifted, output_multiplier, output_shift) + output_offset;
        output[c] = (int8_t)mnv2_clamp(out, -128, 127);
    }
    return MNV2_OK;
}

int32_t mnv2_average_finish_s8(const int32_t *sums,
                               int32_t channels,
                               int32_t count,
                               int32_t activation_min,
                               int32_t activation_max,
                               int8_t *output)
{
    if (channels < 1 || count < 1 || !mnv2_range_ok(activation_min, activation_max))
    {
        return MNV2_ARG_ERROR;
    }
    for (int32_t c = 0; c < channels; ++c)
    {
        const int32_t s = sums[c];
        const int32_t avg = s > 0 ? (s + count / 2) / count : (s - count / 2) / count;
        output[c] = (int8_t)mnv2_clamp(avg, activation_min, activation_max);
    }
    return MNV2_OK;
}

/* Kernels of the heads and edges of the MobileNet family (mnv2_ops_family.h). */
#include "mnv2_ops_family.c"
