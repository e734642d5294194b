/*
 * mnv2_segment.c - see mnv2_segment.h. Pointer arithmetic only; every number comes from
 * the plan. mnv2gen.planner.segment_sim runs the same steps in NumPy.
 */
#include "mnv2_segment.h"

#include <string.h>

void mnv2_ring_read(const mnv2_ring *r, const int8_t *arena, int32_t index, int32_t pixels,
                    int8_t *dst)
{
    while (pixels > 0)
    {
        const int32_t slot = index % r->capacity;
        const int32_t room = r->capacity - slot;
        const int32_t n = room < pixels ? room : pixels;
        memcpy(dst, arena + r->offset + slot * r->channels, (size_t)n * (size_t)r->channels);
        dst += n * r->channels;
        index += n;
        pixels -= n;
    }
}

void mnv2_ring_write(const mnv2_ring *r, int8_t *arena, int32_t index, int32_t pixels,
                     const int8_t *src)
{
    while (pixels > 0)
    {
        const int32_t slot = index % r->capacity;
        const int32_t room = r->capacity - slot;
        const int32_t n = room < pixels ? room : pixels;
        memcpy(arena + r->offset + slot * r->channels, src, (size_t)n * (size_t)r->channels);
        src += n * r->channels;
        index += n;
        pixels -= n;
    }
}

/* Move each window row's last `halo` columns (row stride old_w) to its start (row stride
 * new_w), in an order that never overwrites a row not yet moved. */
static void shift_window(int8_t *base, int32_t rows, int32_t old_w, int32_t new_w, int32_t halo,
                         int32_t channels)
{
    const size_t bytes = (size_t)halo * (size_t)channels;
    if (new_w <= old_w)
    {
        for (int32_t k = 0; k < rows; ++k)
        {
            memmove(base + k * new_w * channels, base + (k * old_w + old_w - halo) * channels, bytes);
        }
    }
    else
    {
        for (int32_t k = rows - 1; k >= 0; --k)
        {
            memmove(base + k * new_w * channels, base + (k * old_w + old_w - halo) * channels, bytes);
        }
    }
}

static int32_t conv_call(int32_t kind, const mnv2_fused_conv *c, const mnv2_conv_params *params,
                         const mnv2_dims *in, const int8_t *input, const mnv2_dims *out,
                         int8_t *output, int8_t *arena, const mnv2_seg_stage *s)
{
    if (c->kernel != 0)
    {
        return c->kernel(input, output, out->h * out->w);
    }
    if (c->window_kernel != 0 && out->h == 1)
    {
        return c->window_kernel(input, in->h, in->w, params->pad_top, params->pad_left, output,
                                out->w);
    }
    if (kind == 1)
    {
        return mnv2_conv_s8(params, c->multiplier, c->shift, in, input, &c->filter_dims, c->filter,
                            c->bias, out, output, arena + s->scratch, s->scratch_bytes);
    }
    return mnv2_depthwise_conv_s8(params, c->multiplier, c->shift, in, input, &c->filter_dims,
                                  c->filter, c->bias, out, output, arena + s->scratch,
                                  s->scratch_bytes);
}

/* The new columns of row e of E for tile t, from the producer's input patch, into dst. */
static int32_t produce(const mnv2_seg_stage *s, int8_t *arena, int32_t e, const mnv2_seg_tile *t,
                       int8_t *dst)
{
    const mnv2_seg_erow *er = &s->erows[e];
    const int32_t cx = s->in.channels;
    int8_t *patch = arena + s->patch;
    mnv2_conv_params params = s->producer.params;
    const mnv2_dims in = {1, er->pn, t->xn, cx};
    const mnv2_dims out = {1, 1, t->en - t->halo, s->e_channels};
    for (int32_t k = 0; k < er->pn; ++k)
    {
        mnv2_ring_read(&s->in, arena, (er->p0 + k) * s->in.width + t->xa, t->xn, patch + k * t->xn * cx);
    }
    params.pad_top = er->pad_top;
    params.pad_left = t->xpad;
    return conv_call(s->producer_kind, &s->producer, &params, &in, patch, &out, dst, arena, s);
}

static int32_t prefetch_row(const mnv2_seg_stage *s, int8_t *arena, int32_t e)
{
    const int32_t ring_row = s->erows[e].ring_row;
    for (int32_t i = 0; i < s->tiles_count; ++i)
    {
        const mnv2_seg_tile *t = &s->tiles[i];
        const int32_t fresh = t->en - t->halo;
        if (fresh <= 0)
        {
            continue;
        }
        int32_t status = produce(s, arena, e, t, arena + s->window);
        if (status != MNV2_OK)
        {
            return status;
        }
        mnv2_ring_write(&s->e, arena, ring_row * s->e.width + t->ea + t->halo, fresh, arena + s->window);
    }
    return MNV2_OK;
}

/* The stage's own operation on the assembled window of tile t of output row r. */
static int32_t tile_op(const mnv2_seg_stage *s, int8_t *arena, int32_t r, const mnv2_seg_row *row,
                       const mnv2_seg_tile *t, const int32_t *acc_offset)
{
    int8_t *window = arena + s->window;
    int8_t *out = arena + s->out_tile;
    const mnv2_dims win = {1, row->rows, t->en, s->e_channels};
    int32_t status = MNV2_OK;
    if (s->kind == MNV2_STAGE_FUSED || s->kind == MNV2_STAGE_WINDOW || s->kind == MNV2_STAGE_CONV)
    {
        mnv2_conv_params params = s->op.params;
        const int32_t op_c = s->op_kind == 2 ? s->op.filter_dims.c : s->op.filter_dims.n;
        const mnv2_dims op_out = {1, 1, t->cn, op_c};
        params.pad_top = row->pad_top;
        params.pad_left = t->pad_left;
        int8_t *dst = s->kind == MNV2_STAGE_CONV ? out : arena + s->dw_out;
        status = conv_call(s->op_kind, &s->op, &params, &win, window, &op_out, dst, arena, s);
        if (status == MNV2_OK && s->kind != MNV2_STAGE_CONV)
        {
            const mnv2_dims proj_out = {1, 1, t->cn, s->out.channels};
            status = conv_call(1, &s->project, &s->project.params, &op_out, dst, &proj_out, out,
                               arena, s);
        }
        if (status == MNV2_OK && s->has_add)
        {
            int8_t *x = arena + s->patch;
            mnv2_ring_read(&s->in, arena, r * s->in.width + t->c0, t->cn, x);
            status = mnv2_add_s8(&s->add, x, out, out, t->cn * s->out.channels);
        }
    }
    else if (s->kind == MNV2_STAGE_QUANTIZE)
    {
        const mnv2_seg_quantize *q = &s->quantize;
        const int32_t count = t->cn * s->out.channels;
        status = q->unsigned_input
                     ? mnv2_requantize_u8_s8((const uint8_t *)window, q->input_offset, q->multiplier,
                                             q->shift, q->output_offset, out, count)
                     : mnv2_requantize_s8(window, q->input_offset, q->multiplier, q->shift,
                                          q->output_offset, out, count);
    }
    else
    {
        return mnv2_sum_s32(window, t->cn, s->e_channels, (int32_t *)(void *)(arena + *acc_offset));
    }
    if (status == MNV2_OK)
    {
        mnv2_ring_write(&s->out, arena, r * s->out.width + t->c0, t->cn, out);
    }
    return status;
}

static int32_t output_row(const mnv2_seg_stage *s, int8_t *arena, int32_t r, const int32_t *acc)
{
    const mnv2_seg_row *row = &s->rows[r];
    const int32_t ec = s->e_channels;
    int8_t *window = arena + s->window;
    int32_t prev_w = 0;
    for (int32_t i = 0; i < s->tiles_count; ++i)
    {
        const mnv2_seg_tile *t = &s->tiles[i];
        const int32_t fresh = t->en - t->halo;
        if (t->halo)
        {
            shift_window(window, row->rows, prev_w, t->en, t->halo, ec);
        }
        for (int32_t k = 0; k < row->rows && fresh > 0; ++k)
        {
            int8_t *dst = window + (k * t->en + t->halo) * ec;
            const int32_t e = row->lo + k;
            if (s->kind == MNV2_STAGE_FUSED && k >= row->old)
            {
                int32_t status = produce(s, arena, e, t, dst);
                if (status != MNV2_OK)
                {
                    return status;
                }
                if (s->erows[e].ring_row >= 0)
                {
                    mnv2_ring_write(&s->e, arena, s->erows[e].ring_row * s->e.width + t->ea + t->halo,
                                    fresh, dst);
                }
            }
            else if (s->kind == MNV2_STAGE_FUSED)
            {
                mnv2_ring_read(&s->e, arena, s->erows[e].ring_row * s->e.width + t->ea + t->halo, fresh,
                               dst);
            }
            else
            {
                mnv2_ring_read(&s->in, arena, e * s->in.width + t->ea + t->halo, fresh, dst);
            }
        }
        int32_t status = tile_op(s, arena, r, row, t, acc);
        if (status != MNV2_OK)
        {
            return status;
        }
        prev_w = t->en;
    }
    return MNV2_OK;
}

static int32_t finish_pool(const mnv2_seg_stage *s, int8_t *arena, int32_t acc)
{
    const mnv2_seg_pool *p = &s->pool;
    const int32_t *sums = (const int32_t *)(const void *)(arena + acc);
    int8_t *out = arena + s->out.offset;
    if (p->mean)
    {
        return mnv2_mean_finish_s8(sums, s->e_channels, p->count, p->input_offset, p->multiplier,
                                   p->shift, p->output_offset, out);
    }
    return mnv2_average_finish_s8(sums, s->e_channels, p->count, p->activation_min,
                                  p->activation_max, out);
}

void mnv2_segment_begin(const mnv2_segment *seg, int8_t *arena)
{
    if (seg->acc >= 0)
    {
        const mnv2_seg_stage *last = &seg->stages[seg->stages_count - 1];
        memset(arena + seg->acc, 0, (size_t)last->e_channels * sizeof(int32_t));
    }
}

int32_t mnv2_segment_run(const mnv2_segment *seg, int32_t first, int32_t stop, int8_t *arena)
{
    for (int32_t i = first; i < stop; ++i)
    {
        const mnv2_seg_entry *entry = &seg->entries[i];
        const mnv2_seg_stage *s = &seg->stages[entry->stage];
        int32_t status = entry->kind == MNV2_ENTRY_PREFETCH
                             ? prefetch_row(s, arena, entry->row)
                             : output_row(s, arena, entry->row, &seg->acc);
        if (status == MNV2_OK && s->kind == MNV2_STAGE_POOL && entry->kind == MNV2_ENTRY_ROW &&
            entry->row == s->rows_count - 1)
        {
            status = finish_pool(s, arena, seg->acc);
        }
        if (status != MNV2_OK)
        {
            return status;
        }
    }
    return MNV2_OK;
}
