/*
 * mnv2_fused.c - see mnv2_fused.h. Pointer arithmetic only; every number comes from the plan.
 */
#include "mnv2_fused.h"

#include <string.h>

static int32_t produce(const mnv2_fused_unit *u, const mnv2_band *b, int8_t *arena,
                       int32_t c0, int32_t width, int8_t *dst)
{
    const mnv2_fused_conv *p = &u->producer;
    mnv2_conv_params params = p->params;
    const int8_t *x = arena + u->x_offset + (int32_t)b->producer_row * u->x_dims.w * u->x_dims.c;
    const mnv2_dims in = {1, b->producer_rows, u->x_dims.w, u->x_dims.c};
    const mnv2_dims out = {1, b->new_rows, u->e_dims.w, width};
    mnv2_dims filter = p->filter_dims;
    params.pad_top = b->producer_pad_top;
    if (u->producer_kind == 1)
    {
        /* output channels [c0, c0 + width) of a conv are a contiguous block of filters */
        const int32_t per_filter = filter.h * filter.w * filter.c;
        filter.n = width;
        return mnv2_conv_s8(&params, p->multiplier + c0, p->shift + c0, &in, x, &filter,
                            p->filter + c0 * per_filter, p->bias ? p->bias + c0 : 0, &out, dst,
                            arena + u->scratch_offset, u->scratch_bytes);
    }
    return mnv2_depthwise_conv_s8(&params, p->multiplier, p->shift, &in, x, &filter, p->filter,
                                  p->bias, &out, dst, arena + u->scratch_offset,
                                  u->scratch_bytes);
}

static int32_t depthwise(const mnv2_fused_unit *u, const mnv2_band *b, int8_t *arena,
                         const int8_t *src, int32_t c0, int32_t width)
{
    /* one group: its own channels in and out; no groups: all channels, any multiplier */
    const mnv2_fused_conv *d = &u->depthwise;
    mnv2_conv_params params = d->params;
    const int32_t in_c = u->groups > 1 ? width : u->e_dims.c;
    const int32_t out_c = u->groups > 1 ? width : d->filter_dims.c;
    const mnv2_dims in = {1, b->window_rows, u->e_dims.w, in_c};
    const mnv2_dims out = {1, b->out_rows, u->y_dims.w, out_c};
    mnv2_dims filter = d->filter_dims;
    params.pad_top = b->window_pad_top;
    filter.c = out_c;
    return mnv2_depthwise_conv_s8(&params, d->multiplier + c0, d->shift + c0, &in, src, &filter,
                                  d->filter + filter.h * filter.w * c0, d->bias ? d->bias + c0 : 0,
                                  &out, arena + u->dw_out_offset, arena + u->scratch_offset,
                                  u->scratch_bytes);
}

int32_t mnv2_fused_band(const mnv2_fused_unit *u, const mnv2_band *b, int8_t *arena)
{
    const int32_t pixels = (int32_t)b->out_rows * u->y_dims.w;
    const int32_t y_row = u->y_dims.w * u->y_dims.c;
    int8_t *y = arena + u->y_offset + (int32_t)b->out_row * y_row;
    int8_t *projected = u->has_add ? arena + u->shortcut_offset : y;
    int32_t *acc = (int32_t *)(void *)(arena + u->acc_offset);
    int32_t status = MNV2_OK;

    if (u->groups > 1)
    {
        memset(acc, 0, (size_t)pixels * (size_t)u->y_dims.c * sizeof(int32_t));
    }
    for (int32_t g = 0; g < u->groups && status == MNV2_OK; ++g)
    {
        const int32_t c0 = u->group_start[g];
        const int32_t width = u->group_start[g + 1] - c0;
        const int8_t *dw_in;
        if (u->producer_kind)
        {
            int8_t *window = arena + u->window_offset;
            const int32_t row = u->e_dims.w * width;
            if (b->keep_rows)
            {
                memmove(window, window + (int32_t)b->keep_from * row, (size_t)b->keep_rows * row);
            }
            if (b->new_rows)
            {
                status = produce(u, b, arena, c0, width, window + (int32_t)b->keep_rows * row);
            }
            dw_in = window;
        }
        else
        {
            dw_in = arena + u->x_offset + (int32_t)b->window_row * u->x_dims.w * u->x_dims.c;
        }
        if (status == MNV2_OK)
        {
            status = depthwise(u, b, arena, dw_in, c0, width);
        }
        if (status == MNV2_OK && u->groups > 1)
        {
            status = mnv2_pointwise_accumulate_s32(arena + u->dw_out_offset, pixels, width,
                                                   u->project.params.input_offset,
                                                   u->project.filter + u->y_dims.c * c0,
                                                   u->y_dims.c, acc);
        }
    }
    if (status != MNV2_OK)
    {
        return status;
    }
    if (u->groups > 1)
    {
        status = mnv2_requantize_acc_s8(acc, pixels, u->y_dims.c, u->project.bias,
                                        u->project.multiplier, u->project.shift,
                                        u->project.params.output_offset,
                                        u->project.params.activation_min,
                                        u->project.params.activation_max, projected);
    }
    else
    {
        const mnv2_dims in = {1, b->out_rows, u->y_dims.w, u->project.filter_dims.c};
        const mnv2_dims out = {1, b->out_rows, u->y_dims.w, u->y_dims.c};
        status = mnv2_conv_s8(&u->project.params, u->project.multiplier, u->project.shift, &in,
                              arena + u->dw_out_offset, &u->project.filter_dims, u->project.filter,
                              u->project.bias, &out, projected, arena + u->scratch_offset,
                              u->scratch_bytes);
    }
    if (status == MNV2_OK && u->has_add)
    {
        const int8_t *x = arena + u->x_offset + (int32_t)b->out_row * y_row;
        status = mnv2_add_s8(&u->add, x, projected, y, pixels * u->y_dims.c);
    }
    return status;
}
