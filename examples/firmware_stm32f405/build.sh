#!/usr/bin/env bash
# Synthesize a small MobileNetV2, generate its C library for the STM32F405, build the
# firmware with the Makefile and run it in QEMU.
# Usage: bash examples/firmware_stm32f405/build.sh [BUILD_DIR]   (default: build/ here, ignored
# by git; MNV2GEN overrides the command)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(mkdir -p "${1:-$here/build}" && cd "${1:-$here/build}" && pwd)
# mnv2gen: $MNV2GEN, else the checkout's .venv (the README's first command makes it), else PATH
if [ -z "${MNV2GEN:-}" ]; then
    if [ -x "$root/.venv/bin/mnv2gen" ]; then MNV2GEN="$root/.venv/bin/mnv2gen"
    elif command -v mnv2gen >/dev/null 2>&1; then MNV2GEN=mnv2gen
    else echo "error: mnv2gen not found: run the README's first command (it makes .venv), or set MNV2GEN" >&2; exit 2
    fi
fi
$MNV2GEN zoo mobilenet-v2 --alpha 0.35 --resolution 96 --classes 10 -o "$build/model.tflite"
$MNV2GEN build "$build/model.tflite" --target stm32f405 --kernels portable -o "$build/lib"
make -C "$here" --no-print-directory LIB="$build/lib" BUILD="$build" run
