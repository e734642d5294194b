/*
 * mnv2_gen_common.h - primitives and requantisation of mnv2gen's generated kernels
 * (see mnv2_gen_kernels.h for the whole picture).
 */
#ifndef MNV2_GEN_COMMON_H
#define MNV2_GEN_COMMON_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MNV2_GEN_DSP 1
#else
#define MNV2_GEN_DSP 0
#endif

#define MNV2_GEN_INLINE static inline __attribute__((always_inline))

/* Attribute of every kernel instance: never inlined into a band step (that costs more
 * registers than the call), and with GCC also kept out of interprocedural constant
 * propagation, which GCC 12.2 miscompiles for a function reading and writing two
 * constant pointers into one array (it drops the call). */
#if defined(__GNUC__) && !defined(__clang__)
#define MNV2_GEN_INSTANCE __attribute__((noipa))
#else
#define MNV2_GEN_INSTANCE __attribute__((noinline))
#endif
/* The depthwise kernels' clipped windows (image borders only) are optimised for size:
 * they are a few percent of the pixels and would otherwise be a third of the code. */
#if defined(__GNUC__) && !defined(__clang__)
#define MNV2_GEN_COLD __attribute__((noipa, optimize("Os")))
#else
#define MNV2_GEN_COLD MNV2_GEN_INSTANCE
#endif

/* Hide a pointer's value from the optimiser (no instruction): stops loads of the same
 * input tile from being hoisted out of an output-channel loop into stack spills. */
#define MNV2_G_OPAQUE(p) __asm__("" : "+r"(p))

/** One output channel's requantisation (layout.py writes these rows). */
typedef struct
{
    int32_t bias;       /**< int32 bias (1x1: input_offset * sum(w) folded in) */
    int32_t multiplier; /**< fixed-point multiplier, [0, 2^31) */
    int32_t round;      /**< FAST: 2^(shift-1) + output_offset * 2^shift; EXACT: 2^right - 1 */
    int32_t shift;      /**< FAST: right shift 1..23; EXACT: TFLite's signed shift */
} mnv2_rq;

/* A requantisation table (int32 array of mnv2_rq rows) as the kernels take it. */
#define MNV2_RQ(table) ((const mnv2_rq *)(const void *)(table))

#define MNV2_RQ_FAST 0
#define MNV2_RQ_EXACT 1
#define MNV2_RQ_ACC 2 /* 1x1 only: add int32 partial sums to an accumulator */

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

/* Two words at p[0], p[1] that the optimiser must not merge with an earlier load of the
 * same words (keeping them alive in a register would cost more than loading again). */
MNV2_GEN_INLINE void mnv2_g_load_pair(const int32_t *p, int32_t *lo, int32_t *hi)
{
    __asm__("ldrd %0, %1, %2" : "=r"(*lo), "=r"(*hi) : "m"(*(const int64_t *)(const void *)p));
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

/*
 * Requantise acc with q = {multiplier, round, shift}, add the output offset, clamp.
 * FAST (the generator picks it only where acc * 2 is exact and shift is 1..23): TFLite's
 * SRDHM(acc, m) is floor((2acc*m + 2^31) / 2^32) and its RoundingDivideByPOT(h, s) is
 * floor((h + 2^(s-1) - [h < 0]) / 2^s); h < 0 only if acc < 0, and acc < 0 with h == 0
 * gives the same result, so one SMMLAR with round = 2^(s-1) + output_offset * 2^s, one
 * add of acc >> 31 and one shift compute both roundings and the offset.
 * EXACT: TFLite's MultiplyByQuantizedMultiplier written out (left shift wraps), saturated
 * to int16 so that adding the output offset cannot overflow; q = {multiplier,
 * 2^right - 1, TFLite's signed shift}.
 */
MNV2_GEN_INLINE int8_t mnv2_g_out(int32_t acc, const int32_t *q, const int32_t MODE,
                                  const int32_t OUT_OFF, const int32_t AMIN, const int32_t AMAX)
{
    int32_t v;
    if (MODE == MNV2_RQ_FAST)
    {
        v = (mnv2_g_smmlar(acc * 2, q[0], q[1]) + (acc >> 31)) >> q[2];
    }
    else
    {
        /* q = {multiplier, 2^right - 1, TFLite's signed shift}: gemmlowp's
         * RoundingDivideByPOT with its mask precomputed (0 for no right shift) */
        const int32_t left = q[2] > 0 ? q[2] : 0, right = q[2] > 0 ? 0 : -q[2];
        const int32_t x = (int32_t)((uint32_t)acc << left);
        const int32_t h = (int32_t)(((int64_t)x * q[0] + ((int64_t)1 << 30)) >> 31);
        v = (h >> right) + ((h & q[1]) > (q[1] >> 1) + (h < 0));
#if MNV2_GEN_DSP
        v = __ssat(v, 16) + OUT_OFF;
#else
        v = (v > 32767 ? 32767 : (v < -32768 ? -32768 : v)) + OUT_OFF;
#endif
    }
#if MNV2_GEN_DSP
    v = __ssat(v, 8);
#else
    v = v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
    if (AMIN > -128)
    {
        v = v < AMIN ? AMIN : v;
    }
    if (AMAX < 127)
    {
        v = v > AMAX ? AMAX : v;
    }
    return (int8_t)v;
}

#endif /* MNV2_GEN_COMMON_H */
