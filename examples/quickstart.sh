#!/usr/bin/env bash
# The main job on a built-in example: synthesize an int8 MobileNetV2 (0.35 width, 96x96,
# random weights with realistic quantisation), plan its arena, generate the C library for
# Cortex-M7, run it in QEMU and compare every output byte with the NumPy reference.
set -euo pipefail
MNV2GEN=${MNV2GEN:-mnv2gen}
out=${1:-quickstart-out}
mkdir -p "$out"
$MNV2GEN zoo mobilenet-v2 --alpha 0.35 --resolution 96 --classes 10 --seed 1 -o "$out/mnv2_0.35_96.tflite"
$MNV2GEN run "$out/mnv2_0.35_96.tflite" --seed 7 --check-tflm
$MNV2GEN plan "$out/mnv2_0.35_96.tflite"
$MNV2GEN build "$out/mnv2_0.35_96.tflite" --target cortex-m7 --kernels portable -o "$out/mnv2_cortex_m7"
$MNV2GEN verify "$out/mnv2_0.35_96.tflite" --target cortex-m7 --kernels portable --inputs 3
