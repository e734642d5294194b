/*
 * mnv2_gen_kernels.h - bodies of mnv2gen's generated kernels (`--kernels generated`).
 *
 * Every function here is `static inline` and always inlined: the generated
 * mnv2_kernels.c instantiates each one per layer shape with literal constants for every
 * shape, stride, padding, channel count, offset and clamp, so the compiler sees fixed trip
 * counts and immediate offsets. Per-channel numbers come from constant tables built by
 * mnv2gen.codegen.generated.layout, in the order the loops read them.
 *
 * Arithmetic: TFLite's reference kernels with double rounding, bit for bit (the NumPy
 * reference in mnv2gen.reference is the oracle; tests/test_generated_kernels.py checks
 * every kernel on the host and in QEMU):
 *   - pointwise kernels accumulate x * w on top of a bias into which the generator folded
 *     input_offset * sum(w) (int32 wraps, so the folded sum equals TFLite's exactly);
 *   - depthwise and k x k kernels add the input offset while widening (taps in the
 *     padding are skipped, as TFLite does);
 *   - MNV2_RQ_FAST requantises with one rounding high multiply-accumulate; the generator
 *     picks it only for layers where it provably equals TFLite's two roundings (every
 *     channel right-shifts by 1..23 bits and |acc| < 2^30); MNV2_RQ_EXACT is TFLite's
 *     MultiplyByQuantizedMultiplier written out.
 * Armv7E-M DSP cores (__ARM_FEATURE_DSP: Cortex-M4, M7, M33, M55) use SXTB16/SXTAB16 and
 * SMLAD/SMLAxy; other cores and the host run plain C over the same tables.
 *
 * Assumes what GCC, Clang and Arm Compiler guarantee: >> of a negative integer is an
 * arithmetic shift and out-of-range conversions to signed types wrap. Unaligned 32-bit
 * loads (memcpy) are allowed (Armv7-M and later).
 */
#ifndef MNV2_GEN_KERNELS_H
#define MNV2_GEN_KERNELS_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MNV2_GEN_DSP 1
#else
#define MNV2_GEN_DSP 0
#endif

#define MNV2_GEN_INLINE static inline __attribute__((always_inline))

/* Hide a pointer's value from the optimiser (no instruction): stops loads of the same
 * input tile from being hoisted out of the output-channel loop into stack spills. */
#define MNV2_G_OPAQUE(p) __asm__("" : "+r"(p))

/** Requantisation of one output channel (see mnv2gen.codegen.generated.layout). */
typedef struct
{
    int32_t bias;       /**< int32 bias (pointwise: input_offset * sum(w) folded in) */
    int32_t multiplier; /**< fixed-point multiplier, [0, 2^31) */
    int32_t round;      /**< FAST: 2^(shift-1) + output_offset * 2^shift; EXACT: unused */
    int32_t shift;      /**< FAST: right shift 1..23; EXACT: TFLite's signed shift */
} mnv2_rq;

/* A requantisation table (int32 array of mnv2_rq rows) as the kernels take it. */
#define MNV2_RQ(table) ((const mnv2_rq *)(const void *)(table))

#define MNV2_RQ_FAST 0
#define MNV2_RQ_EXACT 1
#define MNV2_RQ_ACC 2 /* pointwise only: add int32 partial sums to acc, no requantisation */

/* ---------------------------------------------------------------- primitives */

MNV2_GEN_INLINE int32_t mnv2_g_load32(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The last n (1..3) bytes of a channel run as the low bytes of a word; the rest zero. */
MNV2_GEN_INLINE int32_t mnv2_g_load_tail(const int8_t *p, const int32_t n)
{
    const uint8_t *u = (const uint8_t *)p;
    uint32_t v = u[0];
    if (n > 1)
    {
        v |= (uint32_t)u[1] << 8;
    }
    if (n > 2)
    {
        v |= (uint32_t)u[2] << 16;
    }
    return (int32_t)v;
}

#if MNV2_GEN_DSP
/* Bytes 1 and 3 of x sign-extended into two halfwords (bytes 0 and 2: __sxtb16). */
MNV2_GEN_INLINE int32_t mnv2_g_sxtb16_hi(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* As mnv2_g_sxtb16_hi, each halfword plus the matching halfword of a. */
MNV2_GEN_INLINE int32_t mnv2_g_sxtab16_hi(int32_t a, int32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* round + floor((a * b + 2^31) / 2^32): one rounding high multiply with an addend. */
MNV2_GEN_INLINE int32_t mnv2_g_smmlar(int32_t a, int32_t b, int32_t round)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(round));
    return r;
}
#else
MNV2_GEN_INLINE int32_t mnv2_g_smmlar(int32_t a, int32_t b, int32_t round)
{
    return (int32_t)(((int64_t)round * 4294967296LL + (int64_t)a * b + 2147483648LL) >> 32);
}
#endif

/* FAST: with acc*2 exact and shift in 1..23, equals TFLite's two roundings plus the
 * output offset (folded into round): SRDHM(acc, m) = floor((2acc*m + 2^31) / 2^32), and
 * RoundingDivideByPOT(h, s) = floor((h + 2^(s-1) - [h < 0]) / 2^s), where h < 0 only
 * if acc < 0 and acc < 0 with h == 0 gives the same result. */
MNV2_GEN_INLINE int32_t mnv2_g_rq_fast(int32_t acc, const mnv2_rq *q)
{
    const int32_t t = mnv2_g_smmlar(acc * 2, q->multiplier, q->round);
    return (t + (acc >> 31)) >> q->shift;
}

/* EXACT: TFLite's MultiplyByQuantizedMultiplier (left shift wraps, double rounding),
 * saturated to int16 so that adding the output offset cannot overflow. */
MNV2_GEN_INLINE int32_t mnv2_g_rq_exact(int32_t acc, const mnv2_rq *q, const int32_t out_off)
{
    const int32_t left = q->shift > 0 ? q->shift : 0;
    const int32_t right = q->shift > 0 ? 0 : -q->shift;
    const int32_t x = (int32_t)((uint32_t)acc << left);
    const int32_t h = (int32_t)(((int64_t)x * q->multiplier + ((int64_t)1 << 30)) >> 31);
    const int32_t mask = (int32_t)(((int64_t)1 << right) - 1);
    const int32_t threshold = (mask >> 1) + (h < 0);
    int32_t r = (h >> right) + ((h & mask) > threshold);
    r = r > 32767 ? 32767 : (r < -32768 ? -32768 : r);
    return r + out_off;
}

/* Requantise, add the output offset and clamp to [amin, amax]. */
MNV2_GEN_INLINE int8_t mnv2_g_out(int32_t acc, const mnv2_rq *q, const int32_t mode,
                                  const int32_t out_off, const int32_t amin, const int32_t amax)
{
    int32_t v = mode == MNV2_RQ_FAST ? mnv2_g_rq_fast(acc, q) : mnv2_g_rq_exact(acc, q, out_off);
#if MNV2_GEN_DSP
    v = __ssat(v, 8);
#else
    v = v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
    if (amin > -128)
    {
        v = v < amin ? amin : v;
    }
    if (amax < 127)
    {
        v = v > amax ? amax : v;
    }
    return (int8_t)v;
}

/* ---------------------------------------------------------------- 1x1 convolution */

#if MNV2_GEN_DSP
/* One block of 4 input channels for pixel J of the tile: 4 SMLADs into a##J, b##J. */
#define MNV2_G_PW_PIXEL(J, XP)                                                                     \
    do                                                                                             \
    {                                                                                              \
        int32_t v_ = (XP), vh_ = mnv2_g_sxtb16_hi(v_);                                             \
        v_ = __sxtb16(v_);                                                                         \
        a##J = __smlad(v_, w0l_, a##J);                                                            \
        a##J = __smlad(vh_, w0h_, a##J);                                                           \
        b##J = __smlad(v_, w1l_, b##J);                                                            \
        b##J = __smlad(vh_, w1h_, b##J);                                                           \
    } while (0)
#define MNV2_G_PW_WEIGHTS(W0, W1)                                                                  \
    const int32_t w0_ = (W0), w1_ = (W1);                                                          \
    const int32_t w0l_ = __sxtb16(w0_), w0h_ = mnv2_g_sxtb16_hi(w0_);                              \
    const int32_t w1l_ = __sxtb16(w1_), w1h_ = mnv2_g_sxtb16_hi(w1_)
#else
#define MNV2_G_PW_PIXEL(J, XP)                                                                     \
    do                                                                                             \
    {                                                                                              \
        const int32_t v_ = (XP);                                                                   \
        a##J += (int8_t)v_ * (int8_t)w0_ + (int8_t)(v_ >> 8) * (int8_t)(w0_ >> 8) +                \
                (int8_t)(v_ >> 16) * (int8_t)(w0_ >> 16) + (v_ >> 24) * (w0_ >> 24);               \
        b##J += (int8_t)v_ * (int8_t)w1_ + (int8_t)(v_ >> 8) * (int8_t)(w1_ >> 8) +                \
                (int8_t)(v_ >> 16) * (int8_t)(w1_ >> 16) + (v_ >> 24) * (w1_ >> 24);               \
    } while (0)
#define MNV2_G_PW_WEIGHTS(W0, W1) const int32_t w0_ = (W0), w1_ = (W1)
#endif

/* One block of 4 input channels (word k of each pixel; the last, partial one with LOAD
 * mnv2_g_load_tail) for the P (1..3) pixels of a tile. */
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

/* Store (or, MODE ACC, add to acc) the two outputs of tile pixel J. */
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
            y[(J) * OUT_C] = mnv2_g_out(a##J, &rq[0], MODE, OUT_OFF, AMIN, AMAX);                  \
            if (two)                                                                               \
            {                                                                                      \
                y[(J) * OUT_C + 1] = mnv2_g_out(b##J, &rq[1], MODE, OUT_OFF, AMIN, AMAX);          \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/*
 * P (1..3) pixels x 2 output channels (one if !two) of a 1x1 convolution over all IN_C
 * input channels. w: the channel pair's weights, tile-major: per block of 4 input channels
 * one word of channel o, then one of channel o + 1 (zero-padded past IN_C and OUT_C).
 * out: int8 y (y[j * OUT_C + {0, 1}]) or, MODE ACC, int32 acc added to likewise.
 */
MNV2_GEN_INLINE void mnv2_g_pw_tile(const int8_t *xp, void *out, const int8_t *w,
                                    const mnv2_rq *rq, const int32_t P, const int32_t two,
                                    const int32_t IN_C, const int32_t OUT_C, const int32_t MODE,
                                    const int32_t OUT_OFF, const int32_t AMIN, const int32_t AMAX)
{
    int8_t *y = (int8_t *)out;
    int32_t *acc = (int32_t *)out;
    const int32_t *wp = (const int32_t *)(const void *)w;
    const int32_t blocks = IN_C / 4;
    MNV2_G_OPAQUE(xp);
    int32_t a0, a1 = 0, a2 = 0, b0 = 0, b1 = 0, b2 = 0;
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
        a0 = a1 = a2 = rq[0].bias;
        b0 = b1 = b2 = two ? rq[1].bias : 0;
    }
    if (blocks <= 16)
    {
#pragma GCC unroll 16
        for (int32_t k = 0; k < blocks; ++k)
        {
            MNV2_G_PW_BLOCK(4 * k, 2 * k, mnv2_g_load32);
        }
    }
    else
    {
        const int32_t *const end = wp + 8 * (blocks / 4);
        do
        {
            MNV2_G_PW_BLOCK(0, 0, mnv2_g_load32);
            MNV2_G_PW_BLOCK(4, 2, mnv2_g_load32);
            MNV2_G_PW_BLOCK(8, 4, mnv2_g_load32);
            MNV2_G_PW_BLOCK(12, 6, mnv2_g_load32);
            xp += 16;
            wp += 8;
        } while (wp != end);
#pragma GCC unroll 3
        for (int32_t k = 0; k < blocks % 4; ++k)
        {
            MNV2_G_PW_BLOCK(4 * k, 2 * k, mnv2_g_load32);
        }
        xp += 4 * (blocks % 4);
        wp += 2 * (blocks % 4);
    }
    if (IN_C % 4)
    {
        /* unrolled: xp and wp still point at the first block; looped: past the last one */
        const int32_t k = blocks <= 16 ? blocks : 0;
        MNV2_G_PW_BLOCK(4 * k, 2 * k, MNV2_G_LOAD_TAIL);
    }
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

/* All output channel pairs of P pixels. */
MNV2_GEN_INLINE void mnv2_g_pw_pixels(const int8_t *x, void *out, const int8_t *w,
                                      const mnv2_rq *rq, const int32_t P, const int32_t IN_C,
                                      const int32_t OUT_C, const int32_t MODE, const int32_t OUT_OFF,
                                      const int32_t AMIN, const int32_t AMAX)
{
    const int32_t pair_bytes = 8 * ((IN_C + 3) / 4);
    const int32_t size = MODE == MNV2_RQ_ACC ? 4 : 1;
    int32_t o = 0;
    for (; o + 1 < OUT_C; o += 2)
    {
        mnv2_g_pw_tile(x, (int8_t *)out + o * size, w + (o / 2) * pair_bytes, rq + o, P, 1, IN_C,
                       OUT_C, MODE, OUT_OFF, AMIN, AMAX);
    }
    if (OUT_C % 2)
    {
        mnv2_g_pw_tile(x, (int8_t *)out + o * size, w + (o / 2) * pair_bytes, rq + o, P, 0, IN_C,
                       OUT_C, MODE, OUT_OFF, AMIN, AMAX);
    }
}

/*
 * 1x1 convolution, stride 1, no padding, over `pixels` consecutive pixels:
 *   MODE FAST/EXACT: y[p][o] = clamp(requant(rq[o].bias + sum_k x[p][k] * w[o][k]))
 *   MODE ACC:        acc[p][o] += sum_k x[p][k] * w[o][k]   (int32, wraps)
 * x: int8 [pixels][IN_C]; out: int8 y [pixels][OUT_C] or int32 acc [pixels][OUT_C].
 * w: output channel pairs, each tile-major (mnv2_g_pw_tile); rq: [OUT_C] (unused by ACC).
 * out may not overlap x.
 */
MNV2_GEN_INLINE void mnv2_g_pw(const int8_t *x, void *out, int32_t pixels, const int8_t *w,
                               const mnv2_rq *rq, const int32_t IN_C, const int32_t OUT_C,
                               const int32_t MODE, const int32_t OUT_OFF, const int32_t AMIN,
                               const int32_t AMAX)
{
    const int32_t size = MODE == MNV2_RQ_ACC ? 4 : 1;
    int32_t p = 0;
    for (; p + 3 <= pixels; p += 3)
    {
        mnv2_g_pw_pixels(x + p * IN_C, (int8_t *)out + p * OUT_C * size, w, rq, 3, IN_C, OUT_C,
                         MODE, OUT_OFF, AMIN, AMAX);
    }
    if (pixels - p == 2)
    {
        mnv2_g_pw_pixels(x + p * IN_C, (int8_t *)out + p * OUT_C * size, w, rq, 2, IN_C, OUT_C,
                         MODE, OUT_OFF, AMIN, AMAX);
    }
    else if (pixels - p == 1)
    {
        mnv2_g_pw_pixels(x + p * IN_C, (int8_t *)out + p * OUT_C * size, w, rq, 1, IN_C, OUT_C,
                         MODE, OUT_OFF, AMIN, AMAX);
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
            y[o] = mnv2_g_out(total, &rq[o], MODE, OUT_OFF, AMIN, AMAX);
        }
        acc += OUT_C;
        y += OUT_C;
    }
}

/* ---------------------------------------------------------------- depthwise k x k */

#if MNV2_GEN_DSP
/* One tap of 4 channels: input word (c0..c3) + offset as (c0, c2), (c1, c3) halfword
 * pairs, times the tap's weights (w0, w2), (w1, w3). */
#define MNV2_G_DW_TAP(PTR, WQ)                                                                     \
    do                                                                                             \
    {                                                                                              \
        const int32_t v_ = mnv2_g_load32(PTR);                                                     \
        const int32_t lo_ = __sxtab16(offp, v_), hi_ = mnv2_g_sxtab16_hi(offp, v_);                \
        const int32_t wl_ = (WQ)[0], wh_ = (WQ)[1];                                                \
        a0 = __smlabb(lo_, wl_, a0);                                                               \
        a2 = __smlatt(lo_, wl_, a2);                                                               \
        a1 = __smlabb(hi_, wh_, a1);                                                               \
        a3 = __smlatt(hi_, wh_, a3);                                                               \
    } while (0)
#else
#define MNV2_G_DW_TAP(PTR, WQ)                                                                     \
    do                                                                                             \
    {                                                                                              \
        const int8_t *p_ = (PTR);                                                                  \
        const int16_t *w_ = (const int16_t *)(const void *)(WQ);                                   \
        a0 += (p_[0] + IN_OFF) * w_[0];                                                            \
        a2 += (p_[2] + IN_OFF) * w_[1];                                                            \
        a1 += (p_[1] + IN_OFF) * w_[2];                                                            \
        a3 += (p_[3] + IN_OFF) * w_[3];                                                            \
    } while (0)
#endif

/*
 * The 4 channels of group wq/rq of one output pixel: taps rows [ky0, ky1) (runtime) and
 * columns [KX0, KX1) (compile time) of the K x K window whose top-left input is xp.
 * wq: the group's weights, 2 words per tap (mnv2gen layout.depthwise_weights).
 */
MNV2_GEN_INLINE void mnv2_g_dw_group(const int8_t *xp, int8_t *yp, const int32_t *wq,
                                     const mnv2_rq *rq, int32_t ky0, int32_t ky1, const int32_t KX0,
                                     const int32_t KX1, const int32_t C, const int32_t W_IN,
                                     const int32_t K, const int32_t IN_OFF, const int32_t MODE,
                                     const int32_t OUT_OFF, const int32_t AMIN, const int32_t AMAX)
{
#if MNV2_GEN_DSP
    const int32_t offp = (int32_t)(((uint32_t)IN_OFF & 0xffffu) | ((uint32_t)IN_OFF << 16));
#endif
    int32_t a0 = rq[0].bias, a1 = rq[1].bias, a2 = rq[2].bias, a3 = rq[3].bias;
#pragma GCC unroll 7
    for (int32_t ky = ky0; ky < ky1; ++ky)
    {
        const int8_t *row = xp + ky * W_IN * C;
        const int32_t *wr = wq + 2 * K * ky;
#pragma GCC unroll 7
        for (int32_t kx = KX0; kx < KX1; ++kx)
        {
            MNV2_G_DW_TAP(row + kx * C, wr + 2 * kx);
        }
    }
    yp[0] = mnv2_g_out(a0, &rq[0], MODE, OUT_OFF, AMIN, AMAX);
    yp[1] = mnv2_g_out(a1, &rq[1], MODE, OUT_OFF, AMIN, AMAX);
    yp[2] = mnv2_g_out(a2, &rq[2], MODE, OUT_OFF, AMIN, AMAX);
    yp[3] = mnv2_g_out(a3, &rq[3], MODE, OUT_OFF, AMIN, AMAX);
}

/* One channel (the last C % 4 ones), weights one int16 per tap. */
MNV2_GEN_INLINE void mnv2_g_dw_single(const int8_t *xp, int8_t *yp, const int16_t *w,
                                      const mnv2_rq *rq, int32_t ky0, int32_t ky1, const int32_t KX0,
                                      const int32_t KX1, const int32_t C, const int32_t W_IN,
                                      const int32_t K, const int32_t IN_OFF, const int32_t MODE,
                                      const int32_t OUT_OFF, const int32_t AMIN, const int32_t AMAX)
{
    int32_t a = rq->bias;
    for (int32_t ky = ky0; ky < ky1; ++ky)
    {
#pragma GCC unroll 7
        for (int32_t kx = KX0; kx < KX1; ++kx)
        {
            a += (xp[(ky * W_IN + kx) * C] + IN_OFF) * w[ky * K + kx];
        }
    }
    *yp = mnv2_g_out(a, rq, MODE, OUT_OFF, AMIN, AMAX);
}

/* Every channel of one output pixel; xp: the window's top-left input pixel (may lie in
 * the padding: only taps [ky0, ky1) x [KX0, KX1) are read). */
MNV2_GEN_INLINE void mnv2_g_dw_pixel(const int8_t *xp, int8_t *yp, const int16_t *w,
                                     const mnv2_rq *rq, int32_t ky0, int32_t ky1, const int32_t KX0,
                                     const int32_t KX1, const int32_t C, const int32_t W_IN,
                                     const int32_t K, const int32_t IN_OFF, const int32_t MODE,
                                     const int32_t OUT_OFF, const int32_t AMIN, const int32_t AMAX)
{
    const int32_t *wq = (const int32_t *)(const void *)w;
    for (int32_t g = 0; g < C / 4; ++g)
    {
        mnv2_g_dw_group(xp + 4 * g, yp + 4 * g, wq + 2 * K * K * g, rq + 4 * g, ky0, ky1, KX0, KX1, C,
                        W_IN, K, IN_OFF, MODE, OUT_OFF, AMIN, AMAX);
    }
#pragma GCC unroll 3
    for (int32_t c = C / 4 * 4; c < C; ++c)
    {
        mnv2_g_dw_single(xp + c, yp + c, w + 4 * K * K * (C / 4) + K * K * (c - C / 4 * 4), rq + c,
                         ky0, ky1, KX0, KX1, C, W_IN, K, IN_OFF, MODE, OUT_OFF, AMIN, AMAX);
    }
}

/* Output column ox with its compile-time clipped tap columns. */
#define MNV2_G_DW_COLUMN(OX, KY0, KY1)                                                             \
    do                                                                                             \
    {                                                                                              \
        const int32_t ix0_ = (OX) * S - PAD_LEFT;                                                  \
        const int32_t kx0_ = ix0_ < 0 ? -ix0_ : 0;                                                 \
        const int32_t kx1_ = ix0_ + K > W_IN ? W_IN - ix0_ : K;                                    \
        mnv2_g_dw_pixel(row + ix0_ * C, yrow + (OX) * C, w, rq, (KY0), (KY1), kx0_, kx1_, C, W_IN, \
                        K, IN_OFF, MODE, OUT_OFF, AMIN, AMAX);                                     \
    } while (0)

/*
 * Depthwise K x K convolution, channel multiplier 1, stride S, of one band:
 *   y[oy][ox][c] = clamp(requant(rq[c].bias + sum (x[iy][ix][c] + IN_OFF) * w[ky][kx][c]))
 * x: int8 [in_rows][W_IN][C], the rows the band reads; pad_top padding rows lie above
 * it and rows below in_rows count as padding (a band at the bottom border). y: int8
 * [out_rows][W_OUT][C]. Columns: PAD_LEFT padding columns on the left, W_OUT fixes the
 * right. w: layout.depthwise_weights; rq: [C]. y may not overlap x.
 */
MNV2_GEN_INLINE void mnv2_g_dw(const int8_t *x, int32_t in_rows, int32_t pad_top, int8_t *y,
                               int32_t out_rows, const int16_t *w, const mnv2_rq *rq, const int32_t C,
                               const int32_t W_IN, const int32_t W_OUT, const int32_t K,
                               const int32_t S, const int32_t PAD_LEFT, const int32_t IN_OFF,
                               const int32_t MODE, const int32_t OUT_OFF, const int32_t AMIN,
                               const int32_t AMAX)
{
    /* output columns whose window lies inside the input: [LO, HI) */
    const int32_t LO = (PAD_LEFT + S - 1) / S;
    const int32_t HI_RAW = W_IN - K + PAD_LEFT >= 0 ? (W_IN - K + PAD_LEFT) / S + 1 : 0;
    const int32_t HI = HI_RAW > W_OUT ? W_OUT : (HI_RAW < LO ? LO : HI_RAW);
    for (int32_t oy = 0; oy < out_rows; ++oy)
    {
        const int32_t iy0 = oy * S - pad_top;
        const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
        const int32_t ky1 = iy0 + K > in_rows ? in_rows - iy0 : K;
        const int8_t *row = x + iy0 * W_IN * C;
        int8_t *yrow = y + oy * W_OUT * C;
#pragma GCC unroll 4
        for (int32_t ox = 0; ox < (LO < W_OUT ? LO : W_OUT); ++ox)
        {
            MNV2_G_DW_COLUMN(ox, ky0, ky1);
        }
        if (ky0 == 0 && ky1 == K)
        {
            for (int32_t ox = LO; ox < HI; ++ox)
            {
                mnv2_g_dw_pixel(row + (ox * S - PAD_LEFT) * C, yrow + ox * C, w, rq, 0, K, 0, K, C, W_IN,
                                K, IN_OFF, MODE, OUT_OFF, AMIN, AMAX);
            }
        }
        else
        {
            for (int32_t ox = LO; ox < HI; ++ox)
            {
                mnv2_g_dw_pixel(row + (ox * S - PAD_LEFT) * C, yrow + ox * C, w, rq, ky0, ky1, 0, K, C,
                                W_IN, K, IN_OFF, MODE, OUT_OFF, AMIN, AMAX);
            }
        }
#pragma GCC unroll 4
        for (int32_t ox = HI > LO ? HI : LO; ox < W_OUT; ++ox)
        {
            MNV2_G_DW_COLUMN(ox, ky0, ky1);
        }
    }
}

/* ---------------------------------------------------------------- k x k convolution */

/*
 * Convolution with a small input patch (the first layer: 3 or 1 input channels; also a
 * depthwise with one input channel and multiplier M, as a convolution with M outputs):
 *   y[oy][ox][o] = clamp(requant(rq[o].bias + sum (x[iy][ix][i] + IN_OFF) * w[o][ky][kx][i]))
 * x: int8 [in_rows][W_IN][IN_C] (band rows, pad_top above, rows below in_rows padding);
 * y: int8 [out_rows][W_OUT][OUT_C]. Each output pixel gathers its K x K x IN_C patch
 * (input plus offset, padding as zero) into int16 pairs on the stack, then every tile of 4
 * output channels takes one SMLAD per pair. w: layout.conv_weights; rq: [OUT_C].
 */
MNV2_GEN_INLINE void mnv2_g_conv(const int8_t *x, int32_t in_rows, int32_t pad_top, int8_t *y,
                                 int32_t out_rows, const int16_t *w, const mnv2_rq *rq,
                                 const int32_t IN_C, const int32_t OUT_C, const int32_t W_IN,
                                 const int32_t W_OUT, const int32_t K, const int32_t S,
                                 const int32_t PAD_LEFT, const int32_t IN_OFF, const int32_t MODE,
                                 const int32_t OUT_OFF, const int32_t AMIN, const int32_t AMAX)
{
    enum
    {
        MNV2_G_PATCH_MAX = 1024
    };
    int16_t ph[MNV2_G_PATCH_MAX] __attribute__((aligned(4)));
    const int32_t PATCH = K * K * IN_C, PAIRS = (PATCH + 1) / 2;
    if (PATCH % 2)
    {
        ph[PATCH] = 0; /* the pad half of the last pair */
    }
    for (int32_t oy = 0; oy < out_rows; ++oy)
    {
        const int32_t iy0 = oy * S - pad_top;
        const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
        const int32_t ky1 = iy0 + K > in_rows ? in_rows - iy0 : K;
        for (int32_t ox = 0; ox < W_OUT; ++ox)
        {
            const int32_t ix0 = ox * S - PAD_LEFT;
            const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
            const int32_t kx1 = ix0 + K > W_IN ? W_IN - ix0 : K;
            const int8_t *xp = x + (iy0 * W_IN + ix0) * IN_C;
            if (ky0 == 0 && ky1 == K && kx0 == 0 && kx1 == K)
            {
#pragma GCC unroll 49
                for (int32_t t = 0; t < K * K; ++t)
                {
#pragma GCC unroll 8
                    for (int32_t i = 0; i < IN_C; ++i)
                    {
                        ph[t * IN_C + i] = (int16_t)(xp[((t / K) * W_IN + t % K) * IN_C + i] + IN_OFF);
                    }
                }
            }
            else
            {
                for (int32_t t = 0; t < K * K; ++t)
                {
                    const int32_t ky = t / K, kx = t % K;
                    const int32_t inside = ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1;
#pragma GCC unroll 8
                    for (int32_t i = 0; i < IN_C; ++i)
                    {
                        ph[t * IN_C + i] = inside ? (int16_t)(xp[(ky * W_IN + kx) * IN_C + i] + IN_OFF) : 0;
                    }
                }
            }
            const int32_t *wq = (const int32_t *)(const void *)w;
            int8_t *yp = y + (oy * W_OUT + ox) * OUT_C;
            for (int32_t o = 0; o < OUT_C; o += 4)
            {
                int32_t a0 = rq[o].bias, a1 = rq[o + 1].bias, a2 = rq[o + 2].bias, a3 = rq[o + 3].bias;
#pragma GCC unroll 32
                for (int32_t q = 0; q < PAIRS; ++q)
                {
#if MNV2_GEN_DSP
                    int32_t pv; /* written as int16 halves: read without aliasing them */
                    memcpy(&pv, ph + 2 * q, sizeof pv);
                    a0 = __smlad(pv, wq[4 * q], a0);
                    a1 = __smlad(pv, wq[4 * q + 1], a1);
                    a2 = __smlad(pv, wq[4 * q + 2], a2);
                    a3 = __smlad(pv, wq[4 * q + 3], a3);
#else
                    const int16_t p0 = ph[2 * q], p1 = ph[2 * q + 1];
                    const int16_t *wh = (const int16_t *)(const void *)(wq + 4 * q);
                    a0 += p0 * wh[0] + p1 * wh[1];
                    a1 += p0 * wh[2] + p1 * wh[3];
                    a2 += p0 * wh[4] + p1 * wh[5];
                    a3 += p0 * wh[6] + p1 * wh[7];
#endif
                }
                wq += 4 * PAIRS;
                yp[o] = mnv2_g_out(a0, &rq[o], MODE, OUT_OFF, AMIN, AMAX);
                if (o + 1 < OUT_C)
                {
                    yp[o + 1] = mnv2_g_out(a1, &rq[o + 1], MODE, OUT_OFF, AMIN, AMAX);
                }
                if (o + 2 < OUT_C)
                {
                    yp[o + 2] = mnv2_g_out(a2, &rq[o + 2], MODE, OUT_OFF, AMIN, AMAX);
                }
                if (o + 3 < OUT_C)
                {
                    yp[o + 3] = mnv2_g_out(a3, &rq[o + 3], MODE, OUT_OFF, AMIN, AMAX);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- elementwise ADD */

/*
 * int8 ADD (TFLite): y[i] = clamp(requant(t1[x1[i] & 0xff] + t2[x2[i] & 0xff])), where
 * t1, t2 (layout.add_input_table) hold each input's rescaled value (x - zero point)
 * << left_shift times its multiplier for all 256 int8 values; q requantises the sum (its
 * bias is 0). y may start at or before x1 or x2 (every element is read before written).
 */
MNV2_GEN_INLINE void mnv2_g_add(const int8_t *x1, const int8_t *x2, int8_t *y, int32_t count,
                                const int32_t *t1, const int32_t *t2, const mnv2_rq q,
                                const int32_t MODE, const int32_t OUT_OFF, const int32_t AMIN,
                                const int32_t AMAX)
{
    const uint8_t *u1 = (const uint8_t *)x1, *u2 = (const uint8_t *)x2;
#pragma GCC unroll 4
    for (int32_t i = 0; i < count; ++i)
    {
        y[i] = mnv2_g_out(t1[u1[i]] + t2[u2[i]], &q, MODE, OUT_OFF, AMIN, AMAX);
    }
}

#endif /* MNV2_GEN_KERNELS_H */
