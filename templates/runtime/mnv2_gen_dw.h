/*
 * mnv2_gen_dw.h - depthwise k x k convolution (channel multiplier 1) of mnv2gen's
 * generated kernels: 4 channels at a time, two output pixels per pass inside the image
 * (one weight load feeds both), taps clipped only in the border columns (unrolled at
 * compile time) and rows (per band row). A window inside the image starts from a bias
 * into which the generator folded input_offset * sum(w) (exact in wrapping int32); a
 * clipped one adds the input offset while widening (SXTAB16) and skips the taps outside.
 *
 * Weights stream (layout.depthwise_stream), per group of 4 channels c0..c3:
 *   bias[c0..c3], folded bias[c0..c3]
 *   per tap (ky, kx): halfword pairs (w[c0], w[c2]), (w[c1], w[c3])
 *   multiplier, round, shift of c0, c1, c2, c3
 * then per remaining channel (C % 4): bias, folded bias, multiplier, round, shift, the
 * K*K int16 taps (padded to whole words).
 */
#ifndef MNV2_GEN_DW_H
#define MNV2_GEN_DW_H

#include "mnv2_gen_common.h"

#if MNV2_GEN_DSP
/* One tap of 4 channels of pixel J: input word (c0..c3) as (c0, c2), (c1, c3) halfword
 * pairs (plus the offset unless FULL), times the tap's weights (w0, w2) = wl_,
 * (w1, w3) = wh_. */
#define MNV2_G_DW_TAP(J, PTR)                                                                      \
    do                                                                                             \
    {                                                                                              \
        int32_t v_ = mnv2_g_load32(PTR); /* becomes the low pair: 2 registers, not 3 */           \
        const int32_t hi_ = FULL ? mnv2_g_sxtb16_hi(v_) : mnv2_g_sxtab16_hi(offp, v_);             \
        v_ = FULL ? __sxtb16(v_) : __sxtab16(offp, v_);                                            \
        a##J##0 = __smlabb(v_, wl_, a##J##0);                                                      \
        a##J##2 = __smlatt(v_, wl_, a##J##2);                                                      \
        a##J##1 = __smlabb(hi_, wh_, a##J##1);                                                     \
        a##J##3 = __smlatt(hi_, wh_, a##J##3);                                                     \
    } while (0)
/* The widened pairs v_ (c0, c2), hi_ (c1, c3) of pixel J times one tap's weights. */
#define MNV2_G_DW_MAC(J, WQ)                                                                       \
    do                                                                                             \
    {                                                                                              \
        int32_t wl_, wh_;                                                                          \
        mnv2_g_load_pair((WQ) + 2 * (J) * 0, &wl_, &wh_);                                          \
        a##J##0 = __smlabb(v_, wl_, a##J##0);                                                      \
        a##J##2 = __smlatt(v_, wl_, a##J##2);                                                      \
        a##J##1 = __smlabb(hi_, wh_, a##J##1);                                                     \
        a##J##3 = __smlatt(hi_, wh_, a##J##3);                                                     \
    } while (0)
#else
#define MNV2_G_DW_TAP(J, PTR)                                                                      \
    do                                                                                             \
    {                                                                                              \
        const int8_t *p_ = (PTR);                                                                  \
        const int32_t off_ = FULL ? 0 : IN_OFF;                                                    \
        a##J##0 += (p_[0] + off_) * (int16_t)wl_;                                                  \
        a##J##2 += (p_[2] + off_) * (wl_ >> 16);                                                   \
        a##J##1 += (p_[1] + off_) * (int16_t)wh_;                                                  \
        a##J##3 += (p_[3] + off_) * (wh_ >> 16);                                                   \
    } while (0)
/* Plain C: the column's input is at cp; the weights pair as above. */
#define MNV2_G_DW_MAC(J, WQ)                                                                       \
    do                                                                                             \
    {                                                                                              \
        const int32_t wl_ = (WQ)[0], wh_ = (WQ)[1];                                                \
        MNV2_G_DW_TAP(J, cp);                                                                      \
    } while (0)
#endif

/*
 * The 4 channels of group g of P (1, 2) output pixels, the second one S pixels to the
 * right of the first: taps rows [ky0, ky1) (runtime) x columns [KX0, KX1) (compile time)
 * of the K x K windows whose top-left input pixel is xp (and xp + S * C). FULL: the
 * windows lie inside the image (rows 0..K, columns 0..K).
 */
MNV2_GEN_INLINE void mnv2_g_dw_group(const int8_t *xp, int8_t *yp, const int32_t *g, int32_t ky0,
                                     int32_t ky1, const int32_t KX0, const int32_t KX1,
                                     const int32_t FULL, const int32_t P, const int32_t C,
                                     const int32_t W_IN,
                                     const int32_t K, const int32_t S, const int32_t IN_OFF,
                                     const int32_t MODE, const int32_t OUT_OFF, const int32_t AMIN,
                                     const int32_t AMAX)
{
#if MNV2_GEN_DSP
    const int32_t offp = (int32_t)(((uint32_t)IN_OFF & 0xffffu) | ((uint32_t)IN_OFF << 16));
    (void)offp;
#endif
    const int32_t *const bias = g + (FULL ? 4 : 0);
    int32_t a00 = bias[0], a01 = bias[1], a02 = bias[2], a03 = bias[3];
    int32_t a10 = a00, a11 = a01, a12 = a02, a13 = a03;
    const int32_t *const taps = g + 8;
#pragma GCC unroll 7
    for (int32_t ky = ky0; ky < ky1; ++ky)
    {
        const int8_t *row = xp + ky * W_IN * C;
        const int32_t *wr = taps + 2 * K * ky;
        if (P == 1)
        {
#pragma GCC unroll 7
            for (int32_t kx = KX0; kx < KX1; ++kx)
            {
                const int32_t wl_ = wr[2 * kx], wh_ = wr[2 * kx + 1];
                MNV2_G_DW_TAP(0, row + kx * C);
            }
            continue;
        }
        /* two pixels: by input column, each loaded and widened once, feeding tap j of
         * the first pixel and tap j - S of the second (weights reloaded, which is cheaper
         * than keeping columns alive across taps) */
#pragma GCC unroll 14
        for (int32_t j = 0; j < K + S; ++j)
        {
            const int8_t *cp = row + j * C;
#if MNV2_GEN_DSP
            int32_t v_ = mnv2_g_load32(cp);
            const int32_t hi_ = FULL ? mnv2_g_sxtb16_hi(v_) : mnv2_g_sxtab16_hi(offp, v_);
            v_ = FULL ? __sxtb16(v_) : __sxtab16(offp, v_);
#endif
            if (j < K)
            {
                MNV2_G_DW_MAC(0, wr + 2 * j);
            }
            if (j >= S && j - S < K)
            {
                MNV2_G_DW_MAC(1, wr + 2 * (j - S));
            }
        }
    }
    const int32_t *const q = taps + 2 * K * K;
    yp[0] = mnv2_g_out(a00, q, MODE, OUT_OFF, AMIN, AMAX);
    yp[1] = mnv2_g_out(a01, q + 3, MODE, OUT_OFF, AMIN, AMAX);
    yp[2] = mnv2_g_out(a02, q + 6, MODE, OUT_OFF, AMIN, AMAX);
    yp[3] = mnv2_g_out(a03, q + 9, MODE, OUT_OFF, AMIN, AMAX);
    if (P > 1)
    {
        yp[C] = mnv2_g_out(a10, q, MODE, OUT_OFF, AMIN, AMAX);
        yp[C + 1] = mnv2_g_out(a11, q + 3, MODE, OUT_OFF, AMIN, AMAX);
        yp[C + 2] = mnv2_g_out(a12, q + 6, MODE, OUT_OFF, AMIN, AMAX);
        yp[C + 3] = mnv2_g_out(a13, q + 9, MODE, OUT_OFF, AMIN, AMAX);
    }
}

/* One of the last C % 4 channels of one pixel; t: its tail record. */
MNV2_GEN_INLINE void mnv2_g_dw_single(const int8_t *xp, int8_t *yp, const int32_t *t, int32_t ky0,
                                      int32_t ky1, const int32_t KX0, const int32_t KX1,
                                      const int32_t C, const int32_t W_IN, const int32_t K,
                                      const int32_t IN_OFF, const int32_t MODE,
                                      const int32_t OUT_OFF, const int32_t AMIN, const int32_t AMAX)
{
    const int16_t *w = (const int16_t *)(const void *)(t + 5);
    int32_t a = t[0];
    for (int32_t ky = ky0; ky < ky1; ++ky)
    {
#pragma GCC unroll 7
        for (int32_t kx = KX0; kx < KX1; ++kx)
        {
            a += (xp[(ky * W_IN + kx) * C] + IN_OFF) * w[ky * K + kx];
        }
    }
    *yp = mnv2_g_out(a, t + 2, MODE, OUT_OFF, AMIN, AMAX);
}

/* Every channel of P (1, 2) output pixels; xp: the first window's top-left input pixel
 * (it may lie in the padding: only taps [ky0, ky1) x [KX0, KX1) are read). */
MNV2_GEN_INLINE void mnv2_g_dw_pixels(const int8_t *xp, int8_t *yp, const int32_t *w, int32_t ky0,
                                      int32_t ky1, const int32_t KX0, const int32_t KX1,
                                      const int32_t FULL, const int32_t P, const int32_t C,
                                      const int32_t W_IN, const int32_t K, const int32_t S,
                                      const int32_t IN_OFF, const int32_t MODE,
                                      const int32_t OUT_OFF, const int32_t AMIN, const int32_t AMAX)
{
    const int32_t group_words = 8 + 2 * K * K + 12, tail_words = 5 + (K * K + 1) / 2;
    const int8_t *const x_end = xp + C / 4 * 4;
    const int32_t *g = w;
    for (; xp != x_end; xp += 4, yp += 4, g += group_words)
    {
        mnv2_g_dw_group(xp, yp, g, ky0, ky1, KX0, KX1, FULL, P, C, W_IN, K, S, IN_OFF, MODE, OUT_OFF,
                        AMIN, AMAX);
    }
#pragma GCC unroll 3
    for (int32_t c = 0; c < C % 4; ++c)
    {
#pragma GCC unroll 2
        for (int32_t j = 0; j < P; ++j)
        {
            mnv2_g_dw_single(xp + c + j * S * C, yp + c + j * C, g + c * tail_words, ky0, ky1, KX0,
                             KX1, C, W_IN, K, IN_OFF, MODE, OUT_OFF, AMIN, AMAX);
        }
    }
}

/* A clipped output pixel (at the border of the image or of the band): every channel,
 * taps rows [ky0, ky1) x columns [kx0, kx1), all known at run time only. One copy per
 * instance (the instance passes mnv2_g_dw a function running this). */
MNV2_GEN_INLINE void mnv2_g_dw_clipped(const int8_t *xp, int8_t *yp, const int32_t *w, int32_t ky0,
                                       int32_t ky1, int32_t kx0, int32_t kx1, const int32_t C,
                                       const int32_t W_IN, const int32_t W_OUT, const int32_t K,
                                       const int32_t S, const int32_t PAD_LEFT,
                                       const int32_t IN_OFF, const int32_t MODE,
                                       const int32_t OUT_OFF, const int32_t AMIN, const int32_t AMAX)
{
    /* the column spans of the first and the last output column, unrolled at compile time */
    const int32_t LEFT = PAD_LEFT > K - 1 ? K - 1 : PAD_LEFT;
    const int32_t LAST_IX = (W_OUT - 1) * S - PAD_LEFT;
    const int32_t RIGHT = LAST_IX + K > W_IN ? W_IN - LAST_IX : K;
    if (kx0 == 0 && kx1 == K)
    {
        mnv2_g_dw_pixels(xp, yp, w, ky0, ky1, 0, K, 0, 1, C, W_IN, K, 1, IN_OFF, MODE, OUT_OFF, AMIN,
                         AMAX);
    }
    else if (kx0 == LEFT && kx1 == K && LEFT > 0)
    {
        mnv2_g_dw_pixels(xp, yp, w, ky0, ky1, LEFT, K, 0, 1, C, W_IN, K, 1, IN_OFF, MODE, OUT_OFF,
                         AMIN, AMAX);
    }
    else if (kx0 == 0 && kx1 == RIGHT && RIGHT > 0 && RIGHT < K)
    {
        mnv2_g_dw_pixels(xp, yp, w, ky0, ky1, 0, RIGHT, 0, 1, C, W_IN, K, 1, IN_OFF, MODE, OUT_OFF,
                         AMIN, AMAX);
    }
    else
    {
        mnv2_g_dw_pixels(xp, yp, w, ky0, ky1, kx0, kx1, 0, 1, C, W_IN, K, 1, IN_OFF, MODE, OUT_OFF,
                         AMIN, AMAX);
    }
}

/* The instance's clipped-pixel function (mnv2_g_dw_clipped with its constants). */
typedef void (*mnv2_g_dw_clip_fn)(const int8_t *xp, int8_t *yp, const int32_t *w, int32_t ky0,
                                  int32_t ky1, int32_t kx0, int32_t kx1);

/*
 * Depthwise K x K convolution, channel multiplier 1, stride S, of one band:
 *   y[oy][ox][c] = clamp(requant(bias[c] + sum (x[iy][ix][c] + IN_OFF) * w[ky][kx][c]))
 * x: int8 [in_rows][W_IN][C], the rows the band reads; pad_top padding rows lie above
 * it and rows below in_rows count as padding (a band at the bottom border). y: int8
 * [out_rows][W_OUT][C]. PAD_LEFT padding columns on the left, W_OUT fixes the right.
 * w: layout.depthwise_stream; clip: runs a clipped pixel (mnv2_g_dw_clipped). Windows
 * inside the image run two pixels at a time, fully unrolled. y may not overlap x.
 */
MNV2_GEN_INLINE void mnv2_g_dw(const int8_t *x, int32_t in_rows, int32_t pad_top, int8_t *y,
                               int32_t out_rows, const int32_t *w, mnv2_g_dw_clip_fn clip,
                               const int32_t C, const int32_t W_IN, const int32_t W_OUT,
                               const int32_t K, const int32_t S, const int32_t PAD_LEFT,
                               const int32_t IN_OFF, const int32_t MODE, const int32_t OUT_OFF,
                               const int32_t AMIN, const int32_t AMAX)
{
    /* output columns whose windows lie inside the image columns: [LO, HI) */
    const int32_t LO_RAW = (PAD_LEFT + S - 1) / S;
    const int32_t LO = LO_RAW < W_OUT ? LO_RAW : W_OUT;
    const int32_t HI_RAW = W_IN - K + PAD_LEFT >= 0 ? (W_IN - K + PAD_LEFT) / S + 1 : 0;
    const int32_t HI = HI_RAW > W_OUT ? W_OUT : (HI_RAW < LO ? LO : HI_RAW);
    for (int32_t oy = 0; oy < out_rows; ++oy)
    {
        const int32_t iy0 = oy * S - pad_top;
        const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
        const int32_t ky1 = iy0 + K > in_rows ? in_rows - iy0 : K;
        const int8_t *const row = x + iy0 * W_IN * C;
        int8_t *const yrow = y + oy * W_OUT * C;
        const int32_t full = ky0 == 0 && ky1 == K;
        for (int32_t ox = 0; ox < W_OUT; ++ox)
        {
            const int32_t ix0 = ox * S - PAD_LEFT;
            if (full && ox >= LO && ox < HI)
            {
                const int32_t two = ox + 1 < HI;
                if (two)
                {
                    mnv2_g_dw_pixels(row + ix0 * C, yrow + ox * C, w, 0, K, 0, K, 1, 2, C, W_IN, K, S,
                                     IN_OFF, MODE, OUT_OFF, AMIN, AMAX);
                    ++ox;
                }
                else
                {
                    mnv2_g_dw_pixels(row + ix0 * C, yrow + ox * C, w, 0, K, 0, K, 1, 1, C, W_IN, K, S,
                                     IN_OFF, MODE, OUT_OFF, AMIN, AMAX);
                }
                continue;
            }
            clip(row + ix0 * C, yrow + ox * C, w, ky0, ky1, ix0 < 0 ? -ix0 : 0,
                 ix0 + K > W_IN ? W_IN - ix0 : K);
        }
    }
}

/* The instance's clipped-pixel function inside a segment tile: as mnv2_g_dw_clip_fn, with
 * the window's width (pixels per input row) known at run time only. */
typedef void (*mnv2_g_dw_tile_clip_fn)(const int8_t *xp, int8_t *yp, const int32_t *w,
                                       int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1,
                                       int32_t w_in);

/* A clipped output pixel of a tile (mnv2_g_dw_clipped with a run-time row stride): taps
 * whose columns are all inside unrolled, others clipped at run time. */
MNV2_GEN_INLINE void mnv2_g_dw_tile_clipped(const int8_t *xp, int8_t *yp, const int32_t *w,
                                            int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1,
                                            int32_t w_in, const int32_t C, const int32_t K,
                                            const int32_t IN_OFF, const int32_t MODE,
                                            const int32_t OUT_OFF, const int32_t AMIN,
                                            const int32_t AMAX)
{
    if (kx0 == 0 && kx1 == K)
    {
        mnv2_g_dw_pixels(xp, yp, w, ky0, ky1, 0, K, 0, 1, C, w_in, K, 1, IN_OFF, MODE, OUT_OFF, AMIN,
                         AMAX);
    }
    else
    {
        mnv2_g_dw_pixels(xp, yp, w, ky0, ky1, kx0, kx1, 0, 1, C, w_in, K, 1, IN_OFF, MODE, OUT_OFF,
                         AMIN, AMAX);
    }
}

/*
 * One output row of a depth-first segment's tile (mnv2_segment.c): as mnv2_g_dw with
 * out_rows 1, the window's geometry known at run time only. x: int8 [in_rows][in_w][C],
 * pad_top padding rows above it and rows below in_rows padding; pad_left padding columns
 * left of it, columns from in_w on padding. y: int8 [out_w][C]. y may not overlap x.
 */
MNV2_GEN_INLINE void mnv2_g_dw_tile(const int8_t *x, int32_t in_rows, int32_t in_w,
                                    int32_t pad_top, int32_t pad_left, int8_t *y, int32_t out_w,
                                    const int32_t *w, mnv2_g_dw_tile_clip_fn clip, const int32_t C,
                                    const int32_t K, const int32_t S, const int32_t IN_OFF,
                                    const int32_t MODE, const int32_t OUT_OFF, const int32_t AMIN,
                                    const int32_t AMAX)
{
    const int32_t lo_raw = (pad_left + S - 1) / S;
    const int32_t lo = lo_raw < out_w ? lo_raw : out_w;
    const int32_t hi_raw = in_w - K + pad_left >= 0 ? (in_w - K + pad_left) / S + 1 : 0;
    const int32_t hi = hi_raw > out_w ? out_w : (hi_raw < lo ? lo : hi_raw);
    const int32_t iy0 = -pad_top;
    const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
    const int32_t ky1 = iy0 + K > in_rows ? in_rows - iy0 : K;
    const int8_t *const row = x + iy0 * in_w * C;
    const int32_t full = ky0 == 0 && ky1 == K;
    for (int32_t ox = 0; ox < out_w; ++ox)
    {
        const int32_t ix0 = ox * S - pad_left;
        if (full && ox >= lo && ox < hi)
        {
            if (ox + 1 < hi)
            {
                mnv2_g_dw_pixels(row + ix0 * C, y + ox * C, w, 0, K, 0, K, 1, 2, C, in_w, K, S, IN_OFF,
                                 MODE, OUT_OFF, AMIN, AMAX);
                ++ox;
            }
            else
            {
                mnv2_g_dw_pixels(row + ix0 * C, y + ox * C, w, 0, K, 0, K, 1, 1, C, in_w, K, S, IN_OFF,
                                 MODE, OUT_OFF, AMIN, AMAX);
            }
            continue;
        }
        clip(row + ix0 * C, y + ox * C, w, ky0, ky1, ix0 < 0 ? -ix0 : 0,
             ix0 + K > in_w ? in_w - ix0 : K, in_w);
    }
}

#endif /* MNV2_GEN_DW_H */
