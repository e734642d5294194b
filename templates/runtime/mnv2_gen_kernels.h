/*
 * mnv2_gen_kernels.h - bodies of mnv2gen's generated kernels (`--kernels generated`).
 *
 * Every function is `static inline` and always inlined: the generated mnv2_kernels.c
 * instantiates each one per layer shape with literal constants for every shape, stride,
 * padding, channel count, offset and clamp, so the compiler sees fixed trip counts and
 * immediate offsets. Weights, biases and requantisation constants come from one constant
 * stream per layer, written offline by mnv2gen.codegen.generated.layout in the order the
 * loops read them (one pointer walks it).
 *
 *   mnv2_gen_common.h  primitives, requantisation (FAST and EXACT)
 *   mnv2_gen_pw.h      1x1 convolution (also the channel-group partial sums)
 *   mnv2_gen_dw.h      depthwise k x k
 *   mnv2_gen_conv.h    k x k convolution with a small patch (first layer), ADD
 *
 * Arithmetic: TFLite's reference kernels with double rounding, bit for bit (the NumPy
 * reference in mnv2gen.reference is the oracle; tests/test_generated_kernels.py checks
 * every kernel on the host and in QEMU):
 *   - 1x1 kernels accumulate x * w on top of a bias into which the generator folded
 *     input_offset * sum(w) (int32 wraps, so the folded sum equals TFLite's exactly);
 *   - depthwise and k x k kernels add the input offset while widening (taps in the
 *     padding are skipped, as TFLite does);
 *   - MNV2_RQ_FAST requantises with one rounding high multiply-accumulate; the generator
 *     picks it only for layers where it provably equals TFLite's two roundings (every
 *     channel shifts right by 1..23 bits and the accumulator's bound stays below 2^30);
 *     MNV2_RQ_EXACT is TFLite's MultiplyByQuantizedMultiplier written out.
 * Armv7E-M DSP cores (__ARM_FEATURE_DSP: Cortex-M4, M7, M33, M55) use SXTB16/SXTAB16 and
 * SMLAD/SMLAxy from arm_acle.h (and SMMLAR); other cores and the host run plain C over
 * the same streams.
 *
 * Assumes what GCC, Clang and Arm Compiler guarantee: >> of a negative integer is an
 * arithmetic shift and out-of-range conversions to signed types wrap. Unaligned 32-bit
 * loads (memcpy) are allowed (Armv7-M and later). The conv kernel keeps its patch (at most
 * 2 KiB, 54 bytes for a 3x3x3 first layer) on the stack; the others use registers only.
 */
#ifndef MNV2_GEN_KERNELS_H
#define MNV2_GEN_KERNELS_H

#include "mnv2_gen_common.h"
#include "mnv2_gen_conv.h"
#include "mnv2_gen_dw.h"
#include "mnv2_gen_pw.h"

#endif /* MNV2_GEN_KERNELS_H */
