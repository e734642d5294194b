/*
 * mnv2_ops_cmsis.c - mnv2_ops.h on top of CMSIS-NN v7 (build with -I<cmsis-nn>/Include
 * and link the CMSIS-NN library; CMSIS_NN_USE_SINGLE_ROUNDING must stay undefined).
 *
 * This file includes mnv2_ops_portable.c, so it is the only runtime file to compile for
 * this backend. Kernels CMSIS-NN has with TFLite's exact semantics (convolutions,
 * depthwise, ADD, average pooling, fully connected, softmax) are CMSIS-NN calls; MEAN,
 * QUANTIZE and the channel-group projection pair stay portable, and so do the argument
 * cases where a CMSIS-NN kernel would differ from the reference (each noted below).
 */
#define MNV2_OPS_CMSIS_NN
#include "mnv2_ops_portable.c"

#include "arm_nnfunctions.h"

static cmsis_nn_dims mnv2_cmsis_dims(const mnv2_dims *d)
{
    const cmsis_nn_dims dims = {d->n, d->h, d->w, d->c};
    return dims;
}

static cmsis_nn_context mnv2_cmsis_context(void *scratch, int32_t scratch_bytes)
{
    const cmsis_nn_context ctx = {scratch, scratch_bytes};
    return ctx;
}

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
                     int32_t scratch_bytes)
{
    if (mnv2_check_conv_s8(params, input_dims, filter_dims, output_dims) != MNV2_OK)
    {
        return MNV2_ARG_ERROR;
    }
    const int32_t is_1x1 = filter_dims->h == 1 && filter_dims->w == 1;
    const cmsis_nn_conv_params conv = {params->input_offset,
                                       params->output_offset,
                                       {params->stride_w, params->stride_h},
                                       {params->pad_left, params->pad_top},
                                       {is_1x1 ? 1 : params->dilation_w, is_1x1 ? 1 : params->dilation_h},
                                       {params->activation_min, params->activation_max}};
    const cmsis_nn_per_channel_quant_params quant = {(int32_t *)output_multiplier, (int32_t *)output_shift};
    cmsis_nn_dims in = mnv2_cmsis_dims(input_dims);
    const cmsis_nn_dims filt = mnv2_cmsis_dims(filter_dims);
    const cmsis_nn_dims bias_dims = {1, 1, 1, output_dims->c};
    const cmsis_nn_dims out = mnv2_cmsis_dims(output_dims);
    cmsis_nn_context ctx = mnv2_cmsis_context(scratch, scratch_bytes);

    /* The 1x1 kernels have no notion of padding: use them only when every tap is inside. */
    const int32_t taps_inside = (output_dims->h - 1) * params->stride_h < input_dims->h &&
        (output_dims->w - 1) * params->stride_w < input_dims->w;
    if (is_1x1 && params->pad_top == 0 && params->pad_left == 0 && taps_inside)
    {
        /* 1x1_fast computes one output pixel per input pixel: give it exactly the rows
         * the output covers (a band may have fewer output rows than input rows). */
        if (params->stride_h == 1 && params->stride_w == 1 && output_dims->w == input_dims->w &&
            (output_dims->h == input_dims->h || input_dims->n == 1))
        {
            in.h = output_dims->h;
            /* Only Arm Compiler DSP builds use a buffer here, unchecked: pass none if too small. */
            if (scratch_bytes < arm_convolve_1x1_s8_fast_get_buffer_size(&in))
            {
                ctx.buf = NULL;
                ctx.size = 0;
            }
            return arm_convolve_1x1_s8_fast(
                &ctx, &conv, &quant, &in, input, &filt, filter, &bias_dims, bias, &out, output);
        }
        return arm_convolve_1x1_s8(&ctx, &conv, &quant, &in, input, &filt, filter, &bias_dims, bias, &out, output);
    }
    /* Not arm_convolve_wrapper_s8: its 1 x N route assumes TFLite SAME padding on Helium
     * (ARM_CMSIS_NN_FAILURE otherwise), while bands here imply any bottom/right padding. */
    if (scratch == NULL || scratch_bytes < arm_convolve_s8_get_buffer_size(&in, &filt))
    {
        return MNV2_ARG_ERROR;
    }
    return arm_convolve_s8(&ctx, &conv, &quant, &in, input, &filt, filter, &bias_dims, bias, NULL, &out, output);
}

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
                               int32_t scratch_bytes)
{
    if (mnv2_check_depthwise_s8(params, input_dims, filter_dims, output_dims) != MNV2_OK)
    {
        return MNV2_ARG_ERROR;
    }
    const cmsis_nn_dw_conv_params dw = {params->input_offset,
                                        params->output_offset,
                                        output_dims->c / input_dims->c,
                                        {params->stride_w, params->stride_h},
                                        {params->pad_left, params->pad_top},
                                        {params->dilation_w, params->dilation_h},
                                        {params->activation_min, params->activation_max}};
    const cmsis_nn_per_channel_quant_params quant = {(int32_t *)output_multiplier, (int32_t *)output_shift};
    const cmsis_nn_dims in = mnv2_cmsis_dims(input_dims);
    const cmsis_nn_dims filt = mnv2_cmsis_dims(filter_dims);
    const cmsis_nn_dims bias_dims = {1, 1, 1, output_dims->c};
    const cmsis_nn_dims out = mnv2_cmsis_dims(output_dims);
    const cmsis_nn_context ctx = mnv2_cmsis_context(scratch, scratch_bytes);

    /* arm_depthwise_conv_3x3_s8 (taken by the wrapper on non-Helium cores) always reads the
     * middle column of a window: wrong when right padding exceeds one column, which only
     * sub-tensor calls produce. The generic kernel skips outside taps and needs no buffer. */
    const int32_t last_middle_column = (output_dims->w - 1) * params->stride_w - params->pad_left + 1;
    if (filter_dims->h == 3 && filter_dims->w == 3 && dw.ch_mult == 1 && last_middle_column >= input_dims->w)
    {
        return arm_depthwise_conv_s8(&ctx, &dw, &quant, &in, input, &filt, filter, &bias_dims, bias, &out, output);
    }
    const int32_t needed = arm_depthwise_conv_wrapper_s8_get_buffer_size(&dw, &in, &filt, &out);
    if (needed > 0 && (scratch == NULL || scratch_bytes < needed))
    {
        return MNV2_ARG_ERROR;
    }
    return arm_depthwise_conv_wrapper_s8(&ctx, &dw, &quant, &in, input, &filt, filter, &bias_dims, bias, &out, output);
}

int32_t mnv2_add_s8(
    const mnv2_add_params *params, const int8_t *input_1, const int8_t *input_2, int8_t *output, int32_t block_size)
{
    if (mnv2_check_add(params, block_size) != MNV2_OK)
    {
        return MNV2_ARG_ERROR;
    }
    /* The DSP path of arm_elementwise_add_s8 shifts 16-bit lanes as (lane & 0xFFFF) << left_shift,
     * which sign-extends correctly only for left_shift >= 16 (TFLite always uses 20). */
    if (params->left_shift < 16)
    {
        return mnv2_portable_add_s8(params, input_1, input_2, output, block_size);
    }
    const mnv2_add_params p = *params;
    return arm_elementwise_add_s8(input_1,
                                  input_2,
                                  p.input_1_offset,
                                  p.input_1_multiplier,
                                  p.input_1_shift,
                                  p.input_2_offset,
                                  p.input_2_multiplier,
                                  p.input_2_shift,
                                  p.left_shift,
                                  output,
                                  p.output_offset,
                                  p.output_multiplier,
                                  p.output_shift,
                                  p.activation_min,
                                  p.activation_max,
                                  block_size);
}

int32_t mnv2_avgpool_s8(const mnv2_pool_params *params,
                        const mnv2_dims *input_dims,
                        const int8_t *input,
                        const mnv2_dims *output_dims,
                        int8_t *output,
                        void *scratch,
                        int32_t scratch_bytes)
{
    if (mnv2_check_pool(params, input_dims, output_dims) != MNV2_OK)
    {
        return MNV2_ARG_ERROR;
    }
    const cmsis_nn_pool_params pool = {{params->stride_w, params->stride_h},
                                       {params->pad_left, params->pad_top},
                                       {params->activation_min, params->activation_max}};
    const cmsis_nn_dims in = mnv2_cmsis_dims(input_dims);
    const cmsis_nn_dims filt = {1, params->filter_h, params->filter_w, 1};
    const cmsis_nn_dims out = mnv2_cmsis_dims(output_dims);
    const cmsis_nn_context ctx = mnv2_cmsis_context(scratch, scratch_bytes);
    const int32_t needed = arm_avgpool_s8_get_buffer_size(output_dims->w, input_dims->c);
    if (needed > 0 && (scratch == NULL || scratch_bytes < needed))
    {
        return MNV2_ARG_ERROR;
    }
    return arm_avgpool_s8(&ctx, &pool, &in, input, &filt, &out, output);
}

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
                                int32_t scratch_bytes)
{
    if (mnv2_check_fc(params, per_channel, batches, in_features, out_features) != MNV2_OK)
    {
        return MNV2_ARG_ERROR;
    }
    /* CMSIS-NN documents filter_offset 0 only (symmetric int8 weights). */
    if (params->filter_offset != 0)
    {
        return mnv2_portable_fully_connected_s8(params,
                                                output_multiplier,
                                                output_shift,
                                                per_channel,
                                                batches,
                                                in_features,
                                                input,
                                                out_features,
                                                filter,
                                                bias,
                                                output,
                                                scratch,
                                                scratch_bytes);
    }
    const cmsis_nn_fc_params fc = {params->input_offset,
                                   params->filter_offset,
                                   params->output_offset,
                                   {params->activation_min, params->activation_max}};
    const cmsis_nn_dims in = {batches, 1, 1, in_features};
    const cmsis_nn_dims filt = {in_features, 1, 1, out_features};
    const cmsis_nn_dims bias_dims = {1, 1, 1, out_features};
    const cmsis_nn_dims out = {batches, 1, 1, out_features};
    const cmsis_nn_context ctx = mnv2_cmsis_context(scratch, scratch_bytes);

    /* Helium kernels read bias + input_offset * (row sums of the filter) from the buffer
     * instead of the bias: computed here at every call, so no extra const data is needed. */
    const int32_t needed = arm_fully_connected_s8_get_buffer_size(&filt);
    if (needed > 0)
    {
        if (scratch == NULL || scratch_bytes < needed)
        {
            return MNV2_ARG_ERROR;
        }
        arm_vector_sum_s8(
            (int32_t *)scratch, in_features, out_features, filter, params->input_offset, params->filter_offset, bias);
    }
    if (per_channel)
    {
        const cmsis_nn_per_channel_quant_params quant = {(int32_t *)output_multiplier, (int32_t *)output_shift};
        return arm_fully_connected_per_channel_s8(
            &ctx, &fc, &quant, &in, input, &filt, filter, &bias_dims, bias, &out, output);
    }
    const cmsis_nn_per_tensor_quant_params quant = {output_multiplier[0], output_shift[0]};
    return arm_fully_connected_s8(&ctx, &fc, &quant, &in, input, &filt, filter, &bias_dims, bias, &out, output);
}

int32_t mnv2_softmax_s8(const int8_t *input,
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
    /* From 512 elements on, a row's sum of exponentials can reach 2^28; the output shift
     * then exceeds 31, which TFLite asserts against and CMSIS-NN's 32-bit shifts leave
     * undefined. The portable kernel keeps exact rounding there (as the reference). */
    if (row_size >= 512)
    {
        return mnv2_portable_softmax_s8(
            input, rows, row_size, input_beta_multiplier, input_beta_left_shift, diff_min, output);
    }
    arm_softmax_s8(input, rows, row_size, input_beta_multiplier, input_beta_left_shift, diff_min, output);
    return MNV2_OK;
}

/* CMSIS-NN routes of the family kernels (mnv2_ops_family.h). */
#include "mnv2_ops_cmsis_family.c"
