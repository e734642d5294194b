/*
 * mnv2_segment.h - depth-first segments: a chain of stages run one output row at a time.
 *
 * A segment runs a chain of units (fused inverted residual blocks, separable pairs,
 * convolutions, a requantisation, a final global pool) row by row, each row in column
 * tiles. The tensor between two stages lives as a ring of pixels; rows of a fused
 * unit's wide tensor E that later rows read wait in its E ring; everything else a tile
 * needs (its window of E, the producer's input patch, the depthwise and output tiles)
 * is transient. The schedule (which stage computes which row, in which order) and every
 * row, column and offset come from mnv2gen's planner (mnv2gen.planner.segment_lower);
 * the code here is pointer arithmetic over those tables and calls into mnv2_ops.h.
 */
#ifndef MNV2_SEGMENT_H
#define MNV2_SEGMENT_H

#include <stdint.h>

#include "mnv2_fused.h"
#include "mnv2_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Stage kinds (mnv2gen.planner.stages). */
#define MNV2_STAGE_FUSED 1    /**< producer -> depthwise -> projection [-> add] */
#define MNV2_STAGE_WINDOW 2   /**< depthwise -> projection reading the input directly */
#define MNV2_STAGE_CONV 3     /**< one convolution or depthwise convolution */
#define MNV2_STAGE_QUANTIZE 4 /**< elementwise requantisation to int8 */
#define MNV2_STAGE_POOL 5     /**< global MEAN / AVERAGE_POOL_2D, summed row by row */

/** Schedule entry kinds. */
#define MNV2_ENTRY_ROW 0      /**< compute one output row of the stage */
#define MNV2_ENTRY_PREFETCH 1 /**< compute one row of E ahead of time into the E ring */

/** A tensor in the arena: pixel i is at offset + (i % capacity) * channels. A whole
 *  tensor has capacity = all its pixels; a ring fewer. */
typedef struct
{
    int32_t offset;   /**< arena offset of slot 0 */
    int32_t capacity; /**< pixels the ring holds */
    int32_t width;    /**< pixels per tensor row */
    int32_t channels; /**< bytes per pixel */
} mnv2_ring;

/** Columns of one tile (the same for every row of a stage). */
typedef struct
{
    int16_t c0, cn;     /**< output columns [c0, c0 + cn) */
    int16_t ea, en;     /**< window columns [ea, ea + en) of E */
    int16_t pad_left;   /**< padding columns left of ea */
    int16_t halo;       /**< leading window columns shifted from the previous tile */
    int16_t xa, xn;     /**< producer input columns [xa, xa + xn) for the new columns */
    int16_t xpad;       /**< padding columns left of xa */
} mnv2_seg_tile;

/** Rows of one output row: window rows [lo, lo + rows) of E (pad_top padding above);
 *  the first `old` come from the E ring (or, without producer, the input), the rest
 *  are computed by the producer now. */
typedef struct
{
    int16_t lo, rows, pad_top, old;
} mnv2_seg_row;

/** A row of E: its E ring row (-1: not kept) and the producer's input rows. */
typedef struct
{
    int16_t ring_row; /**< row index in the E ring, -1 when no later row reads it */
    int16_t p0, pn;   /**< producer input rows [p0, p0 + pn) */
    int16_t pad_top;  /**< padding rows above p0 */
} mnv2_seg_erow;

/** Requantisation of a MNV2_STAGE_QUANTIZE stage. */
typedef struct
{
    int32_t input_offset, multiplier, shift, output_offset;
    int32_t unsigned_input; /**< 1: the input is uint8 */
} mnv2_seg_quantize;

/** Finish of a MNV2_STAGE_POOL stage. */
typedef struct
{
    int32_t mean;          /**< 1: MEAN, 0: AVERAGE_POOL_2D */
    int32_t count;         /**< pixels summed */
    int32_t input_offset, multiplier, shift, output_offset;
    int32_t activation_min, activation_max;
} mnv2_seg_pool;

/** One stage of a segment. */
typedef struct
{
    int32_t kind;                       /**< MNV2_STAGE_* */
    int32_t rows_count;                 /**< output rows (a pool: input rows) */
    mnv2_ring in, out, e;               /**< input, output, E ring (e.capacity 0: none) */
    int32_t e_channels;                 /**< channels of E (the window) */
    int32_t producer_kind, op_kind;     /**< 1 convolution, 2 depthwise (0: none) */
    int32_t window, patch, dw_out, out_tile; /**< arena offsets of the transient parts */
    int32_t scratch, scratch_bytes;     /**< kernel scratch */
    mnv2_fused_conv producer, op, project; /**< op: the depthwise or the stage's conv */
    int32_t has_add;
    mnv2_add_params add;                /**< input 1 is the stage input */
    mnv2_seg_quantize quantize;
    mnv2_seg_pool pool;
    int32_t tiles_count;
    const mnv2_seg_tile *tiles;
    const mnv2_seg_row *rows;
    const mnv2_seg_erow *erows;         /**< per row of E (fused stages), else 0 */
} mnv2_seg_stage;

/** One schedule entry. */
typedef struct
{
    uint8_t stage, kind; /**< stage index, MNV2_ENTRY_* */
    uint16_t row;        /**< output row, or row of E for a prefetch */
} mnv2_seg_entry;

/** A segment: its stages and schedule. */
typedef struct
{
    int32_t stages_count;
    const mnv2_seg_stage *stages;
    int32_t entries_count;
    const mnv2_seg_entry *entries;
    const uint16_t *rows_needed; /**< per entry: input rows needed (streamed input), or 0 */
    int32_t acc;                 /**< arena offset of a final pool's int32 sums, -1: none */
} mnv2_segment;

/** Copy `pixels` pixels starting at pixel `index` of ring r into dst. */
void mnv2_ring_read(const mnv2_ring *r, const int8_t *arena, int32_t index, int32_t pixels,
                    int8_t *dst);

/** Copy `pixels` pixels from src to pixel `index` onwards of ring r. */
void mnv2_ring_write(const mnv2_ring *r, int8_t *arena, int32_t index, int32_t pixels,
                     const int8_t *src);

/** Prepare a segment run (zero a final pool's sums). */
void mnv2_segment_begin(const mnv2_segment *seg, int8_t *arena);

/**
 * @brief Run schedule entries [first, stop) of a segment inside the arena.
 * @return MNV2_OK, or the first nonzero kernel status
 */
int32_t mnv2_segment_run(const mnv2_segment *seg, int32_t first, int32_t stop, int8_t *arena);

#ifdef __cplusplus
}
#endif

#endif /* MNV2_SEGMENT_H */
