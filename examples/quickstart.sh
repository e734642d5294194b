#!/usr/bin/env bash
# The main job on a built-in example: synthesize an int8 MobileNetV2 (0.35 width, 96x96,
# random weights with realistic quantisation), plan its arena, generate the C library for
# Cortex-M7, run it in QEMU and compare every output byte with the NumPy reference.
# Usage: bash examples/quickstart.sh [OUT_DIR]   (default quickstart-out, ignored by git)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# mnv2gen: $MNV2GEN, else the checkout's .venv (the README's first command makes it), else PATH
if [ -z "${MNV2GEN:-}" ]; then
    if [ -x "$root/.venv/bin/mnv2gen" ]; then MNV2GEN="$root/.venv/bin/mnv2gen"
    elif command -v mnv2gen >/dev/null 2>&1; then MNV2GEN=mnv2gen
    else echo "error: mnv2gen not found: run the README's first command (it makes .venv), or set MNV2GEN" >&2; exit 2
    fi
fi
out=${1:-quickstart-out}
mkdir -p "$out"
$MNV2GEN zoo mobilenet-v2 --alpha 0.35 --resolution 96 --classes 10 --seed 1 -o "$out/mnv2_0.35_96.tflite"
$MNV2GEN run "$out/mnv2_0.35_96.tflite" --seed 7 --check-tflm
$MNV2GEN plan "$out/mnv2_0.35_96.tflite"
$MNV2GEN build "$out/mnv2_0.35_96.tflite" --target cortex-m7 --kernels portable -o "$out/mnv2_cortex_m7"
$MNV2GEN verify "$out/mnv2_0.35_96.tflite" --target cortex-m7 --kernels portable --inputs 3
