#!/usr/bin/env bash
# Synthesize a small MobileNetV2, generate its C library for the STM32F405, build the
# firmware with the Makefile and run it in QEMU.
# Usage: bash examples/firmware_stm32f405/build.sh [BUILD_DIR]   (MNV2GEN overrides the command)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(mkdir -p "${1:-$here/build}" && cd "${1:-$here/build}" && pwd)
MNV2GEN=${MNV2GEN:-mnv2gen}
$MNV2GEN zoo mobilenet-v2 --alpha 0.35 --resolution 96 --classes 10 -o "$build/model.tflite"
$MNV2GEN build "$build/model.tflite" --target stm32f405 --kernels portable -o "$build/lib"
make -C "$here" --no-print-directory LIB="$build/lib" BUILD="$build" run
