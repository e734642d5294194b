/*
 * mnv2_gen_conv.h - k x k convolution with a small input patch (the first layer of a
 * network: 3 or 1 input channels; also a depthwise with one input channel and
 * multiplier M, which is a convolution with M outputs), the elementwise ADD and the
 * lookup-table elementwise operators of mnv2gen's generated kernels.
 *
 * The input offset is folded into the bias (input_offset * sum(w), exact in wrapping
 * int32) and taps in the padding are gathered as the input zero point, which the folded
 * bias cancels exactly: padding then contributes nothing, as TFLite's skipped taps.
 *
 * Convolution weights stream (layout.conv_stream), per tile of 4 output channels:
 *   folded bias of the 4 channels
 *   per pair q of patch values (tap-major, input channel minor): for each of the 4
 *   channels the halfword pair (w[2q], w[2q+1]) (zero-padded to whole tiles and pairs)
 *   multiplier, round, shift of the 4 channels
 */
#ifndef MNV2_GEN_CONV_H
#define MNV2_GEN_CONV_H

#include "mnv2_gen_common.h"

/* Gather one output pixel's patch: x per tap and input channel, the zero point -IN_OFF
 * for taps outside rows [ky0, ky1) x columns [kx0, kx1). */
MNV2_GEN_INLINE void mnv2_g_patch(int16_t *ph, const int8_t *xp, int32_t ky0, int32_t ky1,
                                  int32_t kx0, int32_t kx1, const int32_t IN_C, const int32_t W_IN,
                                  const int32_t K, const int32_t IN_OFF)
{
    if (ky0 == 0 && ky1 == K && kx0 == 0 && kx1 == K)
    {
#pragma GCC unroll 49
        for (int32_t t = 0; t < K * K; ++t)
        {
#pragma GCC unroll 8
            for (int32_t i = 0; i < IN_C; ++i)
            {
                ph[t * IN_C + i] = xp[((t / K) * W_IN + t % K) * IN_C + i];
            }
        }
        return;
    }
    for (int32_t t = 0; t < K * K; ++t)
    {
        const int32_t ky = t / K, kx = t % K;
        const int32_t inside = ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1;
#pragma GCC unroll 8
        for (int32_t i = 0; i < IN_C; ++i)
        {
            ph[t * IN_C + i] = inside ? xp[(ky * W_IN + kx) * IN_C + i] : (int16_t)-IN_OFF;
        }
    }
}

/*
 * y[oy][ox][o] = clamp(requant(bias[o] + sum (x[iy][ix][i] + IN_OFF) * w[o][ky][kx][i]))
 *             = clamp(requant(folded bias[o] + sum x[iy][ix][i] * w[o][ky][kx][i]))
 * x: int8 [in_rows][W_IN][IN_C] (band rows, pad_top above, rows below in_rows padding);
 * y: int8 [out_rows][W_OUT][OUT_C]. Each output pixel gathers its K x K x IN_C patch
 * into ph (int16 [K * K * IN_C rounded up to even], 4-byte aligned: the instance's stack),
 * then every tile of 4 output channels takes one SMLAD per pair and tile channel.
 * w: layout.conv_stream.
 */
MNV2_GEN_INLINE void mnv2_g_conv(const int8_t *x, int32_t in_rows, int32_t pad_top, int8_t *y,
                                 int32_t out_rows, const int32_t *w, int16_t *ph, const int32_t IN_C,
                                 const int32_t OUT_C, const int32_t W_IN, const int32_t W_OUT,
                                 const int32_t K, const int32_t S, const int32_t PAD_LEFT,
                                 const int32_t IN_OFF, const int32_t MODE, const int32_t OUT_OFF,
                                 const int32_t AMIN, const int32_t AMAX)
{
    const int32_t PATCH = K * K * IN_C, PAIRS = (PATCH + 1) / 2, TILE_WORDS = 16 + 4 * PAIRS;
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
            mnv2_g_patch(ph, x + (iy0 * W_IN + ix0) * IN_C, ky0, ky1, kx0, kx1, IN_C, W_IN, K, IN_OFF);
            const int32_t *t = w;
            int8_t *yp = y + (oy * W_OUT + ox) * OUT_C;
            for (int32_t o = 0; o < OUT_C; o += 4, t += TILE_WORDS)
            {
                int32_t a0 = t[0], a1 = t[1], a2 = t[2], a3 = t[3];
                const int32_t *wq = t + 4;
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
                    const int32_t p0 = ph[2 * q], p1 = ph[2 * q + 1];
                    const int32_t *v = wq + 4 * q;
                    a0 += p0 * (int16_t)v[0] + p1 * (v[0] >> 16);
                    a1 += p0 * (int16_t)v[1] + p1 * (v[1] >> 16);
                    a2 += p0 * (int16_t)v[2] + p1 * (v[2] >> 16);
                    a3 += p0 * (int16_t)v[3] + p1 * (v[3] >> 16);
#endif
                }
                const int32_t *q = wq + 4 * PAIRS;
                yp[o] = mnv2_g_out(a0, q, MODE, OUT_OFF, AMIN, AMAX);
                if (o + 1 < OUT_C)
                {
                    yp[o + 1] = mnv2_g_out(a1, q + 3, MODE, OUT_OFF, AMIN, AMAX);
                }
                if (o + 2 < OUT_C)
                {
                    yp[o + 2] = mnv2_g_out(a2, q + 6, MODE, OUT_OFF, AMIN, AMAX);
                }
                if (o + 3 < OUT_C)
                {
                    yp[o + 3] = mnv2_g_out(a3, q + 9, MODE, OUT_OFF, AMIN, AMAX);
                }
            }
        }
    }
}

/*
 * int8 ADD (TFLite): y[i] = clamp(requant(t1[x1[i] & 0xff] + t2[x2[i] & 0xff])), where
 * t1, t2 (layout.add_input_table) hold each input's rescaled value, (x - zero point)
 * << left_shift times its multiplier, for all 256 int8 values; q = {multiplier, round,
 * shift} requantises the sum. y may start at or before x1 or x2 (each element is read
 * before it is written).
 */
MNV2_GEN_INLINE void mnv2_g_add(const int8_t *x1, const int8_t *x2, int8_t *y, int32_t count,
                                const int32_t *t1, const int32_t *t2, const int32_t *q,
                                const int32_t MODE, const int32_t OUT_OFF, const int32_t AMIN,
                                const int32_t AMAX)
{
    const uint8_t *u1 = (const uint8_t *)x1, *u2 = (const uint8_t *)x2;
#pragma GCC unroll 4
    for (int32_t i = 0; i < count; ++i)
    {
        y[i] = mnv2_g_out(t1[u1[i]] + t2[u2[i]], q, MODE, OUT_OFF, AMIN, AMAX);
    }
}

/* y[i] = table[x[i] & 0xff]: an elementwise int8 operator of one input byte (the table
 * holds its output for every byte, see mnv2gen.codegen.generated.tables). y may be x. */
MNV2_GEN_INLINE void mnv2_g_lut(const int8_t *x, int8_t *y, int32_t count, const int8_t *table)
{
    const uint8_t *u = (const uint8_t *)x;
#pragma GCC unroll 4
    for (int32_t i = 0; i < count; ++i)
    {
        y[i] = table[u[i]];
    }
}

#endif /* MNV2_GEN_CONV_H */
