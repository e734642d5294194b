/*
 * mnv2_ops_family.c - portable C99 kernels of mnv2_ops_family.h, written from TFLite
 * Micro's reference-kernel arithmetic (checked against mnv2gen's NumPy reference by
 * tests/test_c_family_kernels.py). #included at the end of mnv2_ops_portable.c, whose
 * fixed-point helpers it uses; kernels the CMSIS-NN backend replaces are defined through
 * MNV2_KERNEL.
 */

/* ---------------------------------------------------------------- broadcast binaries */

static int32_t mnv2_broadcast_ok(const mnv2_broadcast *b)
{
    for (int32_t d = 0; d < 4; ++d)
    {
        if (b->dims[d] < 1 || b->stride_1[d] < 0 || b->stride_2[d] < 0)
        {
            return 0;
        }
    }
    return 1;
}

/* Visit the output index space in order; `step` computes one element from both inputs. */
#define MNV2_BROADCAST_LOOP(b, in1, in2, out, step)                                    \
    do                                                                                 \
    {                                                                                  \
        int8_t *o_ = (out);                                                            \
        for (int32_t i0 = 0; i0 < (b)->dims[0]; ++i0)                                  \
            for (int32_t i1 = 0; i1 < (b)->dims[1]; ++i1)                              \
                for (int32_t i2 = 0; i2 < (b)->dims[2]; ++i2)                          \
                {                                                                      \
                    const int8_t *a_ = (in1) + i0 * (b)->stride_1[0] +                 \
                        i1 * (b)->stride_1[1] + i2 * (b)->stride_1[2];                 \
                    const int8_t *c_ = (in2) + i0 * (b)->stride_2[0] +                 \
                        i1 * (b)->stride_2[1] + i2 * (b)->stride_2[2];                 \
                    for (int32_t i3 = 0; i3 < (b)->dims[3]; ++i3)                      \
                    {                                                                  \
                        const int32_t x1 = a_[i3 * (b)->stride_1[3]];                  \
                        const int32_t x2 = c_[i3 * (b)->stride_2[3]];                  \
                        *o_++ = (int8_t)(step);                                        \
                    }                                                                  \
                }                                                                      \
    } while (0)

static inline int32_t mnv2_mul_one(const mnv2_mul_params *p, int32_t x1, int32_t x2)
{
    const int32_t product = (x1 + p->input_1_offset) * (x2 + p->input_2_offset);
    const int32_t out = mnv2_requantize(product, p->output_multiplier, p->output_shift) + p->output_offset;
    return mnv2_clamp(out, p->activation_min, p->activation_max);
}

int32_t MNV2_KERNEL(mul_s8)(const mnv2_mul_params *params, const mnv2_broadcast *broadcast,
                            const int8_t *input_1, const int8_t *input_2, int8_t *output)
{
    if (!mnv2_broadcast_ok(broadcast) || !mnv2_range_ok(params->activation_min, params->activation_max) ||
        !mnv2_offsets_ok(params->input_1_offset, params->output_offset) ||
        !mnv2_offsets_ok(params->input_2_offset, 0))
    {
        return MNV2_ARG_ERROR;
    }
    MNV2_BROADCAST_LOOP(broadcast, input_1, input_2, output, mnv2_mul_one(params, x1, x2));
    return MNV2_OK;
}

/* The rescaled inputs of ADD/SUB: ((x + offset) << left_shift) times the input's multiplier. */
static inline int32_t mnv2_add_input(int32_t x, int32_t offset, int32_t left_shift, int32_t multiplier,
                                     int32_t shift)
{
    return mnv2_requantize((int32_t)((uint32_t)(x + offset) << left_shift), multiplier, shift);
}

static inline int32_t mnv2_add_sub_one(const mnv2_add_params *p, int32_t x1, int32_t x2, int32_t sign)
{
    const int32_t a = mnv2_add_input(x1, p->input_1_offset, p->left_shift, p->input_1_multiplier, p->input_1_shift);
    const int32_t b = mnv2_add_input(x2, p->input_2_offset, p->left_shift, p->input_2_multiplier, p->input_2_shift);
    const int32_t raw = sign > 0 ? (int32_t)((uint32_t)a + (uint32_t)b) : (int32_t)((uint32_t)a - (uint32_t)b);
    const int32_t out = mnv2_requantize(raw, p->output_multiplier, p->output_shift) + p->output_offset;
    return mnv2_clamp(out, p->activation_min, p->activation_max);
}

static int32_t mnv2_add_sub_broadcast(const mnv2_add_params *params, const mnv2_broadcast *broadcast,
                                      const int8_t *input_1, const int8_t *input_2, int8_t *output,
                                      int32_t sign)
{
    if (!mnv2_broadcast_ok(broadcast) || mnv2_check_add(params, 0) != MNV2_OK)
    {
        return MNV2_ARG_ERROR;
    }
    MNV2_BROADCAST_LOOP(broadcast, input_1, input_2, output, mnv2_add_sub_one(params, x1, x2, sign));
    return MNV2_OK;
}

int32_t mnv2_sub_s8(const mnv2_add_params *params, const mnv2_broadcast *broadcast,
                    const int8_t *input_1, const int8_t *input_2, int8_t *output)
{
    return mnv2_add_sub_broadcast(params, broadcast, input_1, input_2, output, -1);
}

int32_t mnv2_add_broadcast_s8(const mnv2_add_params *params, const mnv2_broadcast *broadcast,
                              const int8_t *input_1, const int8_t *input_2, int8_t *output)
{
    return mnv2_add_sub_broadcast(params, broadcast, input_1, input_2, output, 1);
}

/* ---------------------------------------------------------------- activations */

/* gemmlowp's int16 SaturatingRoundingDoublingHighMul (floor form of its nudge). */
static inline int32_t mnv2_srdhm16(int32_t a, int32_t b)
{
    if (a == INT16_MIN && b == INT16_MIN)
    {
        return INT16_MAX;
    }
    return (a * b + (1 << 14)) >> 15;
}

/* TFLite's SaturatingDoublingHighMul: a * b / 2^15 truncated toward zero. */
static inline int32_t mnv2_sdhm16(int32_t a, int32_t b)
{
    if (a == INT16_MIN && b == INT16_MIN)
    {
        return INT16_MAX;
    }
    return (a * b) / (1 << 15);
}

static inline int32_t mnv2_saturating_left_shift16(int32_t x, int32_t amount)
{
    const int64_t shifted = (int64_t)x * ((int64_t)1 << amount);
    return (int32_t)(shifted > INT16_MAX ? INT16_MAX : (shifted < INT16_MIN ? INT16_MIN : shifted));
}

int32_t mnv2_hard_swish_s8(const mnv2_hard_swish_params *params, const int8_t *input,
                           int8_t *output, int32_t size)
{
    const mnv2_hard_swish_params *p = params;
    if (size < 0 || p->output_exponent > 0 || p->output_exponent < -31 || p->reluish_exponent > 30 ||
        p->reluish_exponent < -31)
    {
        return MNV2_ARG_ERROR;
    }
    for (int32_t i = 0; i < size; ++i)
    {
        const int32_t hires = (input[i] - p->input_zero_point) * (1 << 7);
        const int32_t preshift_output = mnv2_srdhm16(hires, p->output_multiplier);
        int32_t reluish = hires;
        if (p->reluish_exponent > 0)
        {
            reluish = mnv2_saturating_left_shift16(reluish, p->reluish_exponent - 1);
        }
        reluish = mnv2_srdhm16(reluish, p->reluish_multiplier);
        if (p->reluish_exponent > 0)
        {
            reluish = mnv2_saturating_left_shift16(reluish, 1);
        }
        if (p->reluish_exponent < 0)
        {
            reluish = mnv2_rounding_divide(reluish, -p->reluish_exponent);
        }
        reluish = (reluish + (1 << 15)) >> 1;
        const int32_t value = mnv2_sdhm16(reluish, preshift_output);
        const int32_t out = mnv2_rounding_divide(value, -p->output_exponent) + p->output_zero_point;
        output[i] = (int8_t)mnv2_clamp(out, -128, 127);
    }
    return MNV2_OK;
}

/* gemmlowp exp_on_negative_values for Q4.27 input a <= 0; Q0.31 result. */
static int32_t mnv2_exp_on_negative_values_q4(int32_t a)
{
    static const int32_t barrel[6] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401};
    const int32_t quarter = 1 << 25;
    const int32_t a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter;
    int32_t result = mnv2_exp_on_interval(mnv2_saturating_left_shift(a_mod_quarter_minus_quarter, 4));
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    for (int32_t k = 0; k < 6; ++k)
    {
        /* bit 25 + k of the remainder stands for exp(-2^(k - 2)) */
        if (remainder & (1 << (25 + k)))
        {
            result = mnv2_srdhm(result, barrel[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

int32_t mnv2_logistic_s8(const mnv2_logistic_params *params, const int8_t *input,
                         int8_t *output, int32_t size)
{
    const mnv2_logistic_params *p = params;
    if (size < 0 || p->input_left_shift < 0 || p->input_left_shift > 62 || p->input_range_radius < 0)
    {
        return MNV2_ARG_ERROR;
    }
    for (int32_t i = 0; i < size; ++i)
    {
        const int32_t centred = input[i] - p->input_zero_point;
        if (centred <= -p->input_range_radius)
        {
            output[i] = -128;
        }
        else if (centred >= p->input_range_radius)
        {
            output[i] = 127;
        }
        else
        {
            const int32_t q4 = mnv2_requantize(centred, p->input_multiplier, p->input_left_shift);
            int32_t q0;
            if (q4 == 0)
            {
                q0 = 1 << 30;
            }
            else
            {
                const int32_t magnitude = q4 > 0 ? q4 : -q4;
                const int32_t positive = mnv2_one_over_one_plus_x(mnv2_exp_on_negative_values_q4(-magnitude));
                q0 = q4 > 0 ? positive : INT32_MAX - positive;
            }
            output[i] = (int8_t)mnv2_clamp(mnv2_rounding_divide(q0, 31 - 8) - 128, -128, 127);
        }
    }
    return MNV2_OK;
}

/* ---------------------------------------------------------------- resize */

/* One axis of ResizeBilinearInteger: 10-bit coordinate and its two neighbours. */
static void mnv2_bilinear_axis(int32_t index, int32_t scale_10, int32_t half_pixel, int32_t in_size,
                               int32_t *coordinate, int32_t *lower, int32_t *upper)
{
    const int32_t value = half_pixel ? index * scale_10 + scale_10 / 2 - (1 << 9) : index * scale_10;
    *coordinate = value;
    *lower = mnv2_max(value / (1 << 10), 0);
    *upper = mnv2_min((value + (1 << 10) - 1) / (1 << 10), in_size - 1);
}

int32_t mnv2_resize_bilinear_s8(const mnv2_resize_params *params, const mnv2_dims *input_dims,
                                const int8_t *input, const mnv2_dims *output_dims,
                                int8_t *output)
{
    if (!mnv2_dims_ok(input_dims) || !mnv2_dims_ok(output_dims) || input_dims->n != output_dims->n ||
        input_dims->c != output_dims->c || params->height_scale_10 < 0 || params->width_scale_10 < 0)
    {
        return MNV2_ARG_ERROR;
    }
    const int32_t c = input_dims->c;
    const int32_t row = input_dims->w * c;
    for (int32_t b = 0; b < output_dims->n; ++b)
    {
        const int8_t *image = input + b * input_dims->h * row;
        for (int32_t y = 0; y < output_dims->h; ++y)
        {
            int32_t in_y, y0, y1;
            mnv2_bilinear_axis(y, params->height_scale_10, params->half_pixel_centers, input_dims->h, &in_y, &y0, &y1);
            const int64_t dy = in_y - (1 << 10) * y0;
            for (int32_t x = 0; x < output_dims->w; ++x)
            {
                int32_t in_x, x0, x1;
                mnv2_bilinear_axis(x, params->width_scale_10, params->half_pixel_centers, input_dims->w, &in_x, &x0, &x1);
                const int64_t dx = in_x - (1 << 10) * x0;
                const int8_t *p00 = image + y0 * row + x0 * c, *p10 = image + y1 * row + x0 * c;
                const int8_t *p01 = image + y0 * row + x1 * c, *p11 = image + y1 * row + x1 * c;
                for (int32_t ch = 0; ch < c; ++ch)
                {
                    const int64_t total = p00[ch] * ((1 << 10) - dy) * ((1 << 10) - dx) +
                        p10[ch] * dy * ((1 << 10) - dx) + p01[ch] * ((1 << 10) - dy) * dx + p11[ch] * dy * dx;
                    const int64_t rounding = total > 0 ? (1 << 19) : -(1 << 19);
                    *output++ = (int8_t)((total + rounding) / (1 << 20));
                }
            }
        }
    }
    return MNV2_OK;
}

int32_t mnv2_resize_nearest_s8(const mnv2_dims *input_dims, const int8_t *input,
                               const mnv2_dims *output_dims, const int32_t *rows,
                               const int32_t *cols, int8_t *output)
{
    if (!mnv2_dims_ok(input_dims) || !mnv2_dims_ok(output_dims) || input_dims->n != output_dims->n ||
        input_dims->c != output_dims->c)
    {
        return MNV2_ARG_ERROR;
    }
    const int32_t c = input_dims->c;
    for (int32_t b = 0; b < output_dims->n; ++b)
    {
        const int8_t *image = input + b * input_dims->h * input_dims->w * c;
        for (int32_t y = 0; y < output_dims->h; ++y)
        {
            for (int32_t x = 0; x < output_dims->w; ++x)
            {
                if (rows[y] < 0 || rows[y] >= input_dims->h || cols[x] < 0 || cols[x] >= input_dims->w)
                {
                    return MNV2_ARG_ERROR;
                }
                const int8_t *pixel = image + (rows[y] * input_dims->w + cols[x]) * c;
                for (int32_t ch = 0; ch < c; ++ch)
                {
                    *output++ = pixel[ch];
                }
            }
        }
    }
    return MNV2_OK;
}

/* ---------------------------------------------------------------- pooling, copies */

int32_t MNV2_KERNEL(max_pool_s8)(const mnv2_pool_params *params, const mnv2_dims *input_dims,
                                 const int8_t *input, const mnv2_dims *output_dims, int8_t *output,
                                 void *scratch, int32_t scratch_bytes)
{
    (void)scratch;
    (void)scratch_bytes;
    if (mnv2_check_pool(params, input_dims, output_dims) != MNV2_OK)
    {
        return MNV2_ARG_ERROR;
    }
    const int32_t c = input_dims->c;
    for (int32_t b = 0; b < output_dims->n; ++b)
    {
        for (int32_t oy = 0; oy < output_dims->h; ++oy)
        {
            const int32_t y_origin = oy * params->stride_h - params->pad_top;
            const int32_t y_start = mnv2_max(0, -y_origin);
            const int32_t y_end = mnv2_min(params->filter_h, input_dims->h - y_origin);
            for (int32_t ox = 0; ox < output_dims->w; ++ox)
            {
                const int32_t x_origin = ox * params->stride_w - params->pad_left;
                const int32_t x_start = mnv2_max(0, -x_origin);
                const int32_t x_end = mnv2_min(params->filter_w, input_dims->w - x_origin);
                int8_t *out = output + ((b * output_dims->h + oy) * output_dims->w + ox) * c;
                for (int32_t ch = 0; ch < c; ++ch)
                {
                    int32_t best = -128;
                    for (int32_t fy = y_start; fy < y_end; ++fy)
                    {
                        const int8_t *in = input + ((b * input_dims->h + y_origin + fy) * input_dims->w + x_origin) * c + ch;
                        for (int32_t fx = x_start; fx < x_end; ++fx)
                        {
                            best = mnv2_max(best, in[fx * c]);
                        }
                    }
                    out[ch] = (int8_t)mnv2_clamp(best, params->activation_min, params->activation_max);
                }
            }
        }
    }
    return MNV2_OK;
}

int32_t mnv2_copy_blocks(const void *input, void *output, int32_t count, int32_t block_bytes,
                         int32_t output_stride_bytes)
{
    if (count < 0 || block_bytes < 0 || output_stride_bytes < block_bytes)
    {
        return MNV2_ARG_ERROR;
    }
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    for (int32_t k = 0; k < count; ++k)
    {
        for (int32_t i = 0; i < block_bytes; ++i)
        {
            out[i] = in[i];
        }
        in += block_bytes;
        out += output_stride_bytes;
    }
    return MNV2_OK;
}

/* Index of the first maximum along the middle axis of [outer][axis_size][inner]. */
static int32_t mnv2_arg_max_at(const int8_t *input, int32_t axis_size, int32_t inner)
{
    int32_t best = 0;
    for (int32_t a = 1; a < axis_size; ++a)
    {
        if (input[a * inner] > input[best * inner])
        {
            best = a;
        }
    }
    return best;
}

int32_t mnv2_arg_max_s8_s32(const int8_t *input, int32_t outer, int32_t axis_size,
                            int32_t inner, int32_t *output)
{
    if (outer < 0 || axis_size < 1 || inner < 1)
    {
        return MNV2_ARG_ERROR;
    }
    for (int32_t o = 0; o < outer; ++o)
    {
        for (int32_t i = 0; i < inner; ++i)
        {
            *output++ = mnv2_arg_max_at(input + o * axis_size * inner + i, axis_size, inner);
        }
    }
    return MNV2_OK;
}

int32_t mnv2_arg_max_s8_s64(const int8_t *input, int32_t outer, int32_t axis_size,
                            int32_t inner, int64_t *output)
{
    if (outer < 0 || axis_size < 1 || inner < 1)
    {
        return MNV2_ARG_ERROR;
    }
    for (int32_t o = 0; o < outer; ++o)
    {
        for (int32_t i = 0; i < inner; ++i)
        {
            *output++ = mnv2_arg_max_at(input + o * axis_size * inner + i, axis_size, inner);
        }
    }
    return MNV2_OK;
}

int32_t mnv2_transpose_s8(const int8_t *input, const mnv2_dims *input_dims,
                          const int32_t perm[4], int8_t *output)
{
    const int32_t dims[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
    const int32_t strides[4] = {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
    int32_t out_dims[4], out_strides[4];
    if (!mnv2_dims_ok(input_dims))
    {
        return MNV2_ARG_ERROR;
    }
    for (int32_t i = 0; i < 4; ++i)
    {
        if (perm[i] < 0 || perm[i] > 3)
        {
            return MNV2_ARG_ERROR;
        }
        out_dims[i] = dims[perm[i]];
        out_strides[i] = strides[perm[i]];
    }
    for (int32_t a = 0; a < out_dims[0]; ++a)
        for (int32_t b = 0; b < out_dims[1]; ++b)
            for (int32_t c = 0; c < out_dims[2]; ++c)
            {
                const int8_t *in = input + a * out_strides[0] + b * out_strides[1] + c * out_strides[2];
                for (int32_t d = 0; d < out_dims[3]; ++d)
                {
                    *output++ = in[d * out_strides[3]];
                }
            }
    return MNV2_OK;
}

int32_t mnv2_pad_s8(const int8_t *input, const mnv2_dims *input_dims, const int32_t before[4],
                    const int32_t after[4], int32_t value, int8_t *output)
{
    const int32_t dims[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
    int32_t out_dims[4];
    if (!mnv2_dims_ok(input_dims) || value < -128 || value > 127)
    {
        return MNV2_ARG_ERROR;
    }
    for (int32_t i = 0; i < 4; ++i)
    {
        if (before[i] < 0 || after[i] < 0)
        {
            return MNV2_ARG_ERROR;
        }
        out_dims[i] = dims[i] + before[i] + after[i];
    }
    for (int32_t a = 0; a < out_dims[0]; ++a)
        for (int32_t b = 0; b < out_dims[1]; ++b)
            for (int32_t c = 0; c < out_dims[2]; ++c)
            {
                const int32_t ia = a - before[0], ib = b - before[1], ic = c - before[2];
                const int32_t inside = ia >= 0 && ia < dims[0] && ib >= 0 && ib < dims[1] && ic >= 0 && ic < dims[2];
                const int8_t *in = input + ((ia * dims[1] + ib) * dims[2] + ic) * dims[3];
                for (int32_t d = 0; d < out_dims[3]; ++d)
                {
                    const int32_t id = d - before[3];
                    *output++ = (int8_t)(inside && id >= 0 && id < dims[3] ? in[id] : value);
                }
            }
    return MNV2_OK;
}

int32_t mnv2_requantize_s8_u8(const int8_t *input, int32_t input_offset, int32_t multiplier,
                              int32_t shift, int32_t output_offset, uint8_t *output,
                              int32_t block_size)
{
    if (block_size < 0)
    {
        return MNV2_ARG_ERROR;
    }
    for (int32_t i = 0; i < block_size; ++i)
    {
        const int32_t x = input[i];
        const int32_t out = mnv2_requantize(x + input_offset, multiplier, shift) + output_offset;
        output[i] = (uint8_t)mnv2_clamp(out, 0, 255);
    }
    return MNV2_OK;
}
