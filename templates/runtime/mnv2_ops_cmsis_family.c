/*
 * mnv2_ops_cmsis_family.c - the mnv2_ops_family.h kernels CMSIS-NN v7 has with TFLite's
 * exact semantics; #included at the end of mnv2_ops_cmsis.c.
 *
 *   MUL          arm_elementwise_mul_s8 on every contiguous run of the innermost
 *                dimension (same shapes, or a per-channel vector as in squeeze-excite);
 *                a broadcast along the innermost dimension (a scalar) stays portable.
 *   MAX_POOL_2D  arm_max_pool_s8, unless a window lies wholly in padding (CMSIS-NN leaves
 *                that output unwritten; TFLite gives activation_min).
 * SUB, HARD_SWISH, LOGISTIC, RESIZE_*, ARG_MAX and the uint8 requantisation have no
 * CMSIS-NN kernel; CONCATENATION and TRANSPOSE are copies, portable in both backends.
 */

int32_t mnv2_mul_s8(const mnv2_mul_params *params, const mnv2_broadcast *broadcast,
                    const int8_t *input_1, const int8_t *input_2, int8_t *output)
{
    const mnv2_broadcast *b = broadcast;
    if (!mnv2_broadcast_ok(b) || b->stride_1[3] != 1 || b->stride_2[3] != 1)
    {
        return mnv2_portable_mul_s8(params, broadcast, input_1, input_2, output);
    }
    for (int32_t i0 = 0; i0 < b->dims[0]; ++i0)
    {
        for (int32_t i1 = 0; i1 < b->dims[1]; ++i1)
        {
            for (int32_t i2 = 0; i2 < b->dims[2]; ++i2)
            {
                const int8_t *a = input_1 + i0 * b->stride_1[0] + i1 * b->stride_1[1] + i2 * b->stride_1[2];
                const int8_t *c = input_2 + i0 * b->stride_2[0] + i1 * b->stride_2[1] + i2 * b->stride_2[2];
                const arm_cmsis_nn_status status = arm_elementwise_mul_s8(
                    a, c, params->input_1_offset, params->input_2_offset, output, params->output_offset,
                    params->output_multiplier, params->output_shift, params->activation_min,
                    params->activation_max, b->dims[3]);
                if (status != ARM_CMSIS_NN_SUCCESS)
                {
                    return MNV2_ARG_ERROR;
                }
                output += b->dims[3];
            }
        }
    }
    return MNV2_OK;
}

/* True when every pooling window covers at least one input pixel. */
static int32_t mnv2_pool_windows_inside(const mnv2_pool_params *p, const mnv2_dims *input_dims,
                                        const mnv2_dims *output_dims)
{
    const int32_t last_y = (output_dims->h - 1) * p->stride_h - p->pad_top;
    const int32_t last_x = (output_dims->w - 1) * p->stride_w - p->pad_left;
    return p->pad_top < p->filter_h && p->pad_left < p->filter_w && last_y < input_dims->h &&
        last_x < input_dims->w;
}

int32_t mnv2_max_pool_s8(const mnv2_pool_params *params, const mnv2_dims *input_dims,
                         const int8_t *input, const mnv2_dims *output_dims, int8_t *output,
                         void *scratch, int32_t scratch_bytes)
{
    if (mnv2_check_pool(params, input_dims, output_dims) != MNV2_OK)
    {
        return MNV2_ARG_ERROR;
    }
    if (!mnv2_pool_windows_inside(params, input_dims, output_dims))
    {
        return mnv2_portable_max_pool_s8(params, input_dims, input, output_dims, output, scratch, scratch_bytes);
    }
    const cmsis_nn_pool_params pool = {{params->stride_w, params->stride_h},
                                       {params->pad_left, params->pad_top},
                                       {params->activation_min, params->activation_max}};
    const cmsis_nn_dims in = mnv2_cmsis_dims(input_dims);
    const cmsis_nn_dims filt = {1, params->filter_h, params->filter_w, 1};
    const cmsis_nn_dims out = mnv2_cmsis_dims(output_dims);
    const cmsis_nn_context ctx = mnv2_cmsis_context(scratch, scratch_bytes);
    return arm_max_pool_s8(&ctx, &pool, &in, input, &filt, &out, output) == ARM_CMSIS_NN_SUCCESS ? MNV2_OK
                                                                                                 : MNV2_ARG_ERROR;
}
