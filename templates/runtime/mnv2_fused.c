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
    if (u->groups == 1 && p->kernel != 0)
    {
        return p->kernel(x, dst, b->new_rows * u->e_dims.w);
    }
    if (u->groups == 1 && p->band_kernel != 0)
    {
        return p->band_kernel(x, b->producer_rows, b->producer_pad_top, dst, b->new_rows);
    }
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
                         const int8_t *src, int32_t c0, int32_t width, int8_t *dst)
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
    if (u->groups == 1 && d->band_kernel != 0)
    {
        return d->band_kernel(src, b->window_rows, b->window_pad_top, dst, b->out_rows);
    }
    filter.c = out_c;
    return mnv2_depthwise_conv_s8(&params, d->multiplier + c0, d->shift + c0, &in, src, &filter,
                                  d->filter + filter.h * filter.w * c0, d->bias ? d->bias + c0 : 0,
                                  &out, dst, arena + u->scratch_offset, u->scratch_bytes);
}

/* An activation op in place over `count` values (kind 0: nothing to do). */
static int32_t activate(const mnv2_fused_act *a, int8_t *data, int32_t count)
{
    if (a->kind != 0 && a->table != 0)
    {
        for (int32_t i = 0; i < count; ++i)
        {
            data[i] = a->table[(uint8_t)data[i]];
        }
        return MNV2_OK;
    }
    switch (a->kind)
    {
    case 1:
        return mnv2_hard_swish_s8(&a->hard_swish, data, data, count);
    case 2:
        return mnv2_logistic_s8(&a->logistic, data, data, count);
    default:
        return MNV2_OK;
    }
}

/* The band's depthwise output (channels [c0, c0 + width)) into dst: window rows kept and
 * produced (then activated), the depthwise (then activated). */
static int32_t front(const mnv2_fused_unit *u, const mnv2_band *b, int8_t *arena, int32_t c0,
                     int32_t width, int8_t *dst)
{
    int32_t status = MNV2_OK;
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
            int8_t *fresh = window + (int32_t)b->keep_rows * row;
            status = produce(u, b, arena, c0, width, fresh);
            if (status == MNV2_OK)
            {
                status = activate(&u->producer_act, fresh, (int32_t)b->new_rows * row);
            }
        }
        dw_in = window;
    }
    else
    {
        dw_in = arena + u->x_offset + (int32_t)b->window_row * u->x_dims.w * u->x_dims.c;
    }
    if (status == MNV2_OK)
    {
        status = depthwise(u, b, arena, dw_in, c0, width, dst);
    }
    if (status == MNV2_OK)
    {
        const int32_t out_c = u->groups > 1 ? width : u->depthwise.filter_dims.c;
        status = activate(&u->depthwise_act, dst, (int32_t)b->out_rows * u->y_dims.w * out_c);
    }
    return status;
}

/* A materialised squeeze-excite unit: the band's rows of the whole depthwise output. */
static int8_t *feature_rows(const mnv2_fused_unit *u, const mnv2_band *b, int8_t *arena)
{
    const int32_t row = u->y_dims.w * u->depthwise.filter_dims.c;
    return arena + u->se.features_offset + (int32_t)b->out_row * row;
}

/* The squeeze-excite MUL in place over `pixels` pixels of the depthwise output. */
static int32_t scale(const mnv2_fused_unit *u, int8_t *rows, int32_t pixels, int8_t *arena)
{
    const int32_t c = u->depthwise.filter_dims.c;
    const int8_t *vector = arena + u->se.vector_offset;
    const mnv2_broadcast rows_first = {{1, 1, pixels, c}, {0, 0, c, 1}, {0, 0, 0, 1}};
    const mnv2_broadcast vector_first = {{1, 1, pixels, c}, {0, 0, 0, 1}, {0, 0, c, 1}};
    if (u->se.features_first)
    {
        return mnv2_mul_s8(&u->se.scale, &rows_first, rows, vector, rows);
    }
    return mnv2_mul_s8(&u->se.scale, &vector_first, vector, rows, rows);
}

int32_t mnv2_fused_squeeze_band(const mnv2_fused_unit *u, const mnv2_band *b, int8_t *arena)
{
    const int32_t c = u->depthwise.filter_dims.c;
    const int32_t pixels = (int32_t)b->out_rows * u->y_dims.w;
    int32_t *sums = (int32_t *)(void *)(arena + u->se.sums_offset);
    int8_t *rows = u->se.strategy == 1 ? feature_rows(u, b, arena) : arena + u->dw_out_offset;
    int32_t status;
    if (u->se.strategy == 0 || u->groups != 1)
    {
        return MNV2_ARG_ERROR;
    }
    if (b->out_row == 0)
    {
        memset(sums, 0, (size_t)c * sizeof(int32_t));
    }
    status = front(u, b, arena, 0, u->e_dims.c, rows);
    for (int32_t p = 0; status == MNV2_OK && p < pixels; ++p)
    {
        const int8_t *x = rows + (size_t)p * c;
        for (int32_t k = 0; k < c; ++k)
        {
            sums[k] = (int32_t)((uint32_t)sums[k] + (uint32_t)(int32_t)x[k]); /* wraps as int32 */
        }
    }
    return status;
}

int32_t mnv2_fused_squeeze_mean(const mnv2_fused_unit *u, int8_t *arena)
{
    /* one value per "pixel": sums + offset, requantised and clamped to int8 */
    return mnv2_requantize_acc_s8((const int32_t *)(const void *)(arena + u->se.sums_offset),
                                  u->depthwise.filter_dims.c, 1, &u->se.mean_input_offset,
                                  &u->se.mean_multiplier, &u->se.mean_shift,
                                  u->se.mean_output_offset, -128, 127, arena + u->se.mean_offset);
}

int32_t mnv2_fused_band(const mnv2_fused_unit *u, const mnv2_band *b, int8_t *arena)
{
    const int32_t pixels = (int32_t)b->out_rows * u->y_dims.w;
    const int32_t y_row = u->y_dims.w * u->y_dims.c;
    int8_t *y = arena + u->y_offset + (int32_t)b->out_row * y_row;
    int8_t *projected = u->has_add ? arena + u->shortcut_offset : y;
    int32_t *acc = (int32_t *)(void *)(arena + u->acc_offset);
    int8_t *rows = arena + u->dw_out_offset;
    int32_t status = MNV2_OK;

    if (u->groups > 1)
    {
        memset(acc, 0, (size_t)pixels * (size_t)u->y_dims.c * sizeof(int32_t));
    }
    for (int32_t g = 0; g < u->groups && status == MNV2_OK; ++g)
    {
        const int32_t c0 = u->group_start[g];
        const int32_t width = u->group_start[g + 1] - c0;
        if (u->se.strategy == 1)
        {
            rows = feature_rows(u, b, arena);
        }
        else
        {
            status = front(u, b, arena, c0, width, rows);
        }
        if (status == MNV2_OK && u->se.strategy)
        {
            status = scale(u, rows, pixels, arena);
        }
        if (status == MNV2_OK && u->groups > 1)
        {
            status = mnv2_pointwise_accumulate_s32(rows, pixels, width,
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
    else if (u->project.kernel != 0)
    {
        status = u->project.kernel(rows, projected, pixels);
    }
    else
    {
        const mnv2_dims in = {1, b->out_rows, u->y_dims.w, u->project.filter_dims.c};
        const mnv2_dims out = {1, b->out_rows, u->y_dims.w, u->y_dims.c};
        status = mnv2_conv_s8(&u->project.params, u->project.multiplier, u->project.shift, &in,
                              rows, &u->project.filter_dims, u->project.filter,
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
