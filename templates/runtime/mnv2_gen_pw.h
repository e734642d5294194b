/*
 * mnv2_gen_pw.h - 1x1 convolution of mnv2gen's generated kernels: a GEMM over pixels in
 * register tiles of 3 pixels x 2 output channels (6 accumulators, 4 widened weight
 * halfword pairs, 2 widened input pairs, 2 pointers: the 14 general registers).
 *
 * Weights stream (layout.pointwise_stream), per pair of output channels o, o + 1:
 *   bias[o], bias[o+1]          (input_offset * sum(w) folded in)
 *   per block of 4 input channels: word of w[o][4k..4k+3], word of w[o+1][4k..4k+3]
 *   multiplier, round, shift of o, then of o + 1
 * (MNV2_RQ_ACC streams hold the weight words only), so one pointer walks the layer.
 * One 32-bit load of weights feeds, after SXTB16 into halfword pairs, one SMLAD per pixel.
 * With WIDE (Python sets it where 6 * IN_C bytes of stack are acceptable) each group of 3
 * pixels (and the last 1 or 2) is first widened once into halfword pairs on the stack,
 * laid out [block][pixel][2 words], so the tiles of every channel pair load them with one
 * LDRD per pixel and block instead of a load and two SXTB16s.
 */
#ifndef MNV2_GEN_PW_H
#define MNV2_GEN_PW_H

#include "mnv2_gen_common.h"

#if MNV2_GEN_DSP
#define MNV2_G_PW_WEIGHTS(W0, W1)                                                                  \
    const int32_t w0_ = (W0), w1_ = (W1);                                                          \
    const int32_t w0l_ = __sxtb16(w0_), w0h_ = mnv2_g_sxtb16_hi(w0_);                              \
    const int32_t w1l_ = __sxtb16(w1_), w1h_ = mnv2_g_sxtb16_hi(w1_)
/* One block of 4 input channels of tile pixel J: 4 SMLADs into a##J, b##J. */
#define MNV2_G_PW_PIXEL(J, XV)                                                                     \
    do                                                                                             \
    {                                                                                              \
        int32_t v_ = (XV), vh_ = mnv2_g_sxtb16_hi(v_);                                             \
        v_ = __sxtb16(v_);                                                                         \
        a##J = __smlad(v_, w0l_, a##J);                                                            \
        a##J = __smlad(vh_, w0h_, a##J);                                                           \
        b##J = __smlad(v_, w1l_, b##J);                                                            \
        b##J = __smlad(vh_, w1h_, b##J);                                                           \
    } while (0)
#else
#define MNV2_G_PW_WEIGHTS(W0, W1) const int32_t w0_ = (W0), w1_ = (W1)
#define MNV2_G_PW_PIXEL(J, XV)                                                                     \
    do                                                                                             \
    {                                                                                              \
        const int32_t v_ = (XV);                                                                   \
        a##J += (int8_t)v_ * (int8_t)w0_ + (int8_t)(v_ >> 8) * (int8_t)(w0_ >> 8) +                \
                (int8_t)(v_ >> 16) * (int8_t)(w0_ >> 16) + (v_ >> 24) * (w0_ >> 24);               \
        b##J += (int8_t)v_ * (int8_t)w1_ + (int8_t)(v_ >> 8) * (int8_t)(w1_ >> 8) +                \
                (int8_t)(v_ >> 16) * (int8_t)(w1_ >> 16) + (v_ >> 24) * (w1_ >> 24);               \
    } while (0)
#endif

/* Block k (word offset XOFF of each pixel, weight word WOFF) for the P pixels of a tile;
 * LOAD reads 4 input bytes (the last, partial block: MNV2_G_LOAD_TAIL). */
#define MNV2_G_PW_BLOCK(XOFF, WOFF, LOAD)                                                          \
    do                                                                                             \
    {                                                                                              \
        MNV2_G_PW_WEIGHTS(wp[WOFF], wp[(WOFF) + 1]);                                               \
        MNV2_G_PW_PIXEL(0, LOAD(xp + (XOFF)));                                                     \
        if (P > 1)                                                                                 \
        {                                                                                          \
            MNV2_G_PW_PIXEL(1, LOAD(xp + (XOFF) + IN_C));                                          \
        }                                                                                          \
        if (P > 2)                                                                                 \
        {                                                                                          \
            MNV2_G_PW_PIXEL(2, LOAD(xp + (XOFF) + 2 * IN_C));                                      \
        }                                                                                          \
    } while (0)
#define MNV2_G_LOAD_TAIL(p) mnv2_g_load_tail((p), IN_C % 4)

#if MNV2_GEN_DSP
/* Block K of the P pre-widened pixels at xw (layout [block][pixel][2 words]). */
#define MNV2_G_PW_WIDE_PIXEL(J, K)                                                                 \
    do                                                                                             \
    {                                                                                              \
        const int32_t v_ = xw[2 * P * (K) + 2 * (J)], vh_ = xw[2 * P * (K) + 2 * (J) + 1];         \
        a##J = __smlad(v_, w0l_, a##J);                                                            \
        a##J = __smlad(vh_, w0h_, a##J);                                                           \
        b##J = __smlad(v_, w1l_, b##J);                                                            \
        b##J = __smlad(vh_, w1h_, b##J);                                                           \
    } while (0)
#define MNV2_G_PW_WIDE_BLOCK(K)                                                                    \
    do                                                                                             \
    {                                                                                              \
        MNV2_G_PW_WEIGHTS(wp[2 * (K)], wp[2 * (K) + 1]);                                           \
        MNV2_G_PW_WIDE_PIXEL(0, K);                                                                \
        if (P > 1)                                                                                 \
        {                                                                                          \
            MNV2_G_PW_WIDE_PIXEL(1, K);                                                            \
        }                                                                                          \
        if (P > 2)                                                                                 \
        {                                                                                          \
            MNV2_G_PW_WIDE_PIXEL(2, K);                                                            \
        }                                                                                          \
    } while (0)
#endif

/* Store (MODE ACC: write back the sums of) tile pixel J's two outputs. */
#define MNV2_G_PW_STORE(J)                                                                         \
    do                                                                                             \
    {                                                                                              \
        if (MODE == MNV2_RQ_ACC)                                                                   \
        {                                                                                          \
            acc[(J) * OUT_C] = a##J;                                                               \
            if (two)                                                                               \
            {                                                                                      \
                acc[(J) * OUT_C + 1] = b##J;                                                       \
            }                                                                                      \
        }                                                                                          \
        else                                                                                       \
        {                                                                                          \
            y[(J) * OUT_C] = mnv2_g_out(a##J, q, MODE, OUT_OFF, AMIN, AMAX);                       \
            if (two)                                                                               \
            {                                                                                      \
                y[(J) * OUT_C + 1] = mnv2_g_out(b##J, q + 3, MODE, OUT_OFF, AMIN, AMAX);           \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/*
 * P (1..3) pixels x 2 output channels (the first only, if !two) over all IN_C inputs;
 * sp: the channel pair's stream. out: int8 y (y[j * OUT_C + {0, 1}]) or, MODE ACC,
 * int32 acc updated likewise. WIDE (DSP): xp is the pre-widened buffer.
 */
MNV2_GEN_INLINE void mnv2_g_pw_tile(const int8_t *xp, void *out, const int32_t *sp,
                                    const int32_t P, const int32_t two, const int32_t WIDE,
                                    const int32_t IN_C, const int32_t OUT_C, const int32_t MODE,
                                    const int32_t OUT_OFF, const int32_t AMIN, const int32_t AMAX)
{
    int8_t *y = (int8_t *)out;
    int32_t *acc = (int32_t *)out;
    const int32_t blocks = IN_C / 4, unrolled = P == 3 && blocks <= 32;
    const int32_t wide = MNV2_GEN_DSP && WIDE;
    (void)wide;
    const int32_t *wp = sp + (MODE == MNV2_RQ_ACC ? 0 : 2);
    int32_t a0, a1 = 0, a2 = 0, b0, b1 = 0, b2 = 0;
    MNV2_G_OPAQUE(xp);
    if (MODE == MNV2_RQ_ACC)
    {
        a0 = acc[0];
        b0 = two ? acc[1] : 0;
        if (P > 1)
        {
            a1 = acc[OUT_C];
            b1 = two ? acc[OUT_C + 1] : 0;
        }
        if (P > 2)
        {
            a2 = acc[2 * OUT_C];
            b2 = two ? acc[2 * OUT_C + 1] : 0;
        }
    }
    else
    {
        a0 = a1 = a2 = sp[0];
        b0 = b1 = b2 = sp[1];
    }
#if MNV2_GEN_DSP
    if (wide)
    {
        const int32_t *xw = (const int32_t *)(const void *)xp;
        const int32_t all = blocks + (IN_C % 4 ? 1 : 0);
        if (all <= 32 && P == 3) /* a call's last 1 or 2 pixels loop: less code */
        {
#pragma GCC unroll 33
            for (int32_t k = 0; k < all; ++k)
            {
                MNV2_G_PW_WIDE_BLOCK(k);
            }
        }
        else
        {
            for (int32_t k = 0; k < all / 4; ++k)
            {
                MNV2_G_PW_WIDE_BLOCK(0);
                MNV2_G_PW_WIDE_BLOCK(1);
                MNV2_G_PW_WIDE_BLOCK(2);
                MNV2_G_PW_WIDE_BLOCK(3);
                xw += 8 * P;
                wp += 8;
            }
#pragma GCC unroll 3
            for (int32_t k = 0; k < all % 4; ++k)
            {
                MNV2_G_PW_WIDE_BLOCK(k);
            }
            wp += 2 * (all % 4) - 2 * all;
        }
        const int32_t *q = wp + 2 * all;
        (void)q;
        MNV2_G_PW_STORE(0);
        if (P > 1)
        {
            MNV2_G_PW_STORE(1);
        }
        if (P > 2)
        {
            MNV2_G_PW_STORE(2);
        }
        return;
    }
#endif
    if (unrolled)
    {
#pragma GCC unroll 32
        for (int32_t k = 0; k < blocks; ++k)
        {
            MNV2_G_PW_BLOCK(4 * k, 2 * k, mnv2_g_load32);
        }
    }
    else
    {
        for (int32_t k = 0; k < blocks / 4; ++k)
        {
            MNV2_G_PW_BLOCK(0, 0, mnv2_g_load32);
            MNV2_G_PW_BLOCK(4, 2, mnv2_g_load32);
            MNV2_G_PW_BLOCK(8, 4, mnv2_g_load32);
            MNV2_G_PW_BLOCK(12, 6, mnv2_g_load32);
            xp += 16;
            wp += 8;
        }
#pragma GCC unroll 3
        for (int32_t k = 0; k < blocks % 4; ++k)
        {
            MNV2_G_PW_BLOCK(4 * k, 2 * k, mnv2_g_load32);
        }
        xp += 4 * (blocks % 4);
        wp += 2 * (blocks % 4);
    }
    /* unrolled: xp and wp still point at the first block; looped: past the last one */
    const int32_t done = unrolled ? blocks : 0;
    if (IN_C % 4)
    {
        MNV2_G_PW_BLOCK(4 * done, 2 * done, MNV2_G_LOAD_TAIL);
    }
    const int32_t *q = wp + 2 * (done + (IN_C % 4 ? 1 : 0));
    (void)q;
    MNV2_G_PW_STORE(0);
    if (P > 1)
    {
        MNV2_G_PW_STORE(1);
    }
    if (P > 2)
    {
        MNV2_G_PW_STORE(2);
    }
}

/* Every output channel pair of P pixels (WIDE: x is the pre-widened buffer). */
MNV2_GEN_INLINE void mnv2_g_pw_pixels(const int8_t *x, void *out, const int32_t *stream,
                                      const int32_t P, const int32_t WIDE, const int32_t IN_C,
                                      const int32_t OUT_C, const int32_t OUT_ODD,
                                      const int32_t MODE, const int32_t OUT_OFF, const int32_t AMIN,
                                      const int32_t AMAX)
{
    const int32_t pair_words = 2 * ((IN_C + 3) / 4) + (MODE == MNV2_RQ_ACC ? 0 : 8);
    const int32_t size = MODE == MNV2_RQ_ACC ? 4 : 1;
    int8_t *o = (int8_t *)out, *const end = o + size * (OUT_C / 2 * 2);
    for (; o != end; o += 2 * size, stream += pair_words)
    {
        mnv2_g_pw_tile(x, o, stream, P, 1, WIDE, IN_C, OUT_C, MODE, OUT_OFF, AMIN, AMAX);
    }
    if (OUT_ODD)
    {
        mnv2_g_pw_tile(x, o, stream, P, 0, WIDE, IN_C, OUT_C, MODE, OUT_OFF, AMIN, AMAX);
    }
}

#if MNV2_GEN_DSP
/* Widen P (1..3) pixels x IN_C inputs into halfword pairs, layout [block][pixel][2 words]. */
MNV2_GEN_INLINE void mnv2_g_pw_widen(const int8_t *x, int32_t *xw, const int32_t P,
                                     const int32_t IN_C)
{
#pragma GCC unroll 4
    for (int32_t k = 0; k < IN_C / 4; ++k)
    {
#pragma GCC unroll 3
        for (int32_t j = 0; j < P; ++j)
        {
            const int32_t v = mnv2_g_load32(x + j * IN_C + 4 * k);
            xw[2 * P * k + 2 * j] = __sxtb16(v);
            xw[2 * P * k + 2 * j + 1] = mnv2_g_sxtb16_hi(v);
        }
    }
    if (IN_C % 4)
    {
#pragma GCC unroll 3
        for (int32_t j = 0; j < P; ++j)
        {
            const int32_t v = mnv2_g_load_tail(x + j * IN_C + IN_C / 4 * 4, IN_C % 4);
            xw[2 * P * (IN_C / 4) + 2 * j] = __sxtb16(v);
            xw[2 * P * (IN_C / 4) + 2 * j + 1] = mnv2_g_sxtb16_hi(v);
        }
    }
}
#endif

/*
 * 1x1 convolution, stride 1, no padding, of `pixels` consecutive pixels:
 *   MODE FAST/EXACT: y[p][o] = clamp(requant(bias[o] + sum_k x[p][k] * w[o][k]))
 *   MODE ACC:        acc[p][o] += sum_k x[p][k] * w[o][k]   (int32, wraps)
 * x: int8 [pixels][IN_C]; out: int8 y [pixels][OUT_C] or int32 acc [pixels][OUT_C];
 * stream: layout.pointwise_stream; xw: WIDE's stack buffer, int32
 * [6 * ceil(IN_C / 4)], 8-byte aligned (NULL without WIDE). OUT_C may be a run-time value
 * (layers differing only in it share one instance); OUT_ODD must be OUT_C % 2, at
 * compile time. out may not overlap x.
 */
MNV2_GEN_INLINE void mnv2_g_pw(const int8_t *x, void *out, int32_t pixels, const int32_t *stream,
                               int32_t *xw, const int32_t WIDE, const int32_t IN_C,
                               const int32_t OUT_C, const int32_t OUT_ODD, const int32_t MODE,
                               const int32_t OUT_OFF, const int32_t AMIN, const int32_t AMAX)
{
    const int32_t size = MODE == MNV2_RQ_ACC ? 4 : 1;
    int8_t *y = (int8_t *)out;
    int32_t p = 0;
    (void)xw;
    (void)WIDE;
    for (; p + 3 <= pixels; p += 3)
    {
#if MNV2_GEN_DSP
        if (WIDE)
        {
            mnv2_g_pw_widen(x + p * IN_C, xw, 3, IN_C);
            mnv2_g_pw_pixels((const int8_t *)xw, y + p * OUT_C * size, stream, 3, 1, IN_C, OUT_C, OUT_ODD,
                             MODE, OUT_OFF, AMIN, AMAX);
            continue;
        }
#endif
        mnv2_g_pw_pixels(x + p * IN_C, y + p * OUT_C * size, stream, 3, 0, IN_C, OUT_C, OUT_ODD, MODE,
                         OUT_OFF, AMIN, AMAX);
    }
#if MNV2_GEN_DSP
    /* the last 1 or 2 pixels (a segment tile's whole call, often) widened too */
    if (WIDE && pixels - p == 2)
    {
        mnv2_g_pw_widen(x + p * IN_C, xw, 2, IN_C);
        mnv2_g_pw_pixels((const int8_t *)xw, y + p * OUT_C * size, stream, 2, 1, IN_C, OUT_C, OUT_ODD,
                         MODE, OUT_OFF, AMIN, AMAX);
        return;
    }
    if (WIDE && pixels - p == 1)
    {
        mnv2_g_pw_widen(x + p * IN_C, xw, 1, IN_C);
        mnv2_g_pw_pixels((const int8_t *)xw, y + p * OUT_C * size, stream, 1, 1, IN_C, OUT_C, OUT_ODD,
                         MODE, OUT_OFF, AMIN, AMAX);
        return;
    }
    if (WIDE)
    {
        return;
    }
#endif
    if (pixels - p == 2)
    {
        mnv2_g_pw_pixels(x + p * IN_C, y + p * OUT_C * size, stream, 2, 0, IN_C, OUT_C, OUT_ODD, MODE,
                         OUT_OFF, AMIN, AMAX);
    }
    else if (pixels - p == 1)
    {
        mnv2_g_pw_pixels(x + p * IN_C, y + p * OUT_C * size, stream, 1, 0, IN_C, OUT_C, OUT_ODD, MODE,
                         OUT_OFF, AMIN, AMAX);
    }
}

/* y[p][o] = clamp(requant(acc[p][o] + rq[o].bias)): the end of a channel-grouped 1x1. */
MNV2_GEN_INLINE void mnv2_g_requant_acc(const int32_t *acc, int8_t *y, int32_t pixels,
                                        const mnv2_rq *rq, const int32_t OUT_C, const int32_t MODE,
                                        const int32_t OUT_OFF, const int32_t AMIN, const int32_t AMAX)
{
    for (int32_t p = 0; p < pixels; ++p)
    {
        for (int32_t o = 0; o < OUT_C; ++o)
        {
            const int32_t total = (int32_t)((uint32_t)acc[o] + (uint32_t)rq[o].bias);
            y[o] = mnv2_g_out(total, &rq[o].multiplier, MODE, OUT_OFF, AMIN, AMAX);
        }
        acc += OUT_C;
        y += OUT_C;
    }
}

#endif /* MNV2_GEN_PW_H */
