#!/usr/bin/env bash
# Estimate 16 MobileNetV2 configurations (4 widths x 4 resolutions, 1000 classes) on the
# Cortex-M4, M7 and M55 targets, check them against the MCU catalogue, and print which
# parts each one fits. Writes sweep.json and sweep.html (charts) into OUT_DIR.
# Usage: bash examples/sweep/sweep.sh [OUT_DIR]   (default sweep-out, ignored by git;
# MNV2GEN overrides the command)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# mnv2gen: $MNV2GEN, else the checkout's .venv (the README's first command makes it), else PATH
if [ -z "${MNV2GEN:-}" ]; then
    if [ -x "$root/.venv/bin/mnv2gen" ]; then MNV2GEN="$root/.venv/bin/mnv2gen"
    elif command -v mnv2gen >/dev/null 2>&1; then MNV2GEN=mnv2gen
    else echo "error: mnv2gen not found: run the README's first command (it makes .venv), or set MNV2GEN" >&2; exit 2
    fi
fi
out=${1:-sweep-out}
mkdir -p "$out"
$MNV2GEN estimate --arch mobilenet-v2 --alpha 0.35,0.5,0.75,1.0 --resolution 96,128,160,224 \
    --classes 1000 --target cortex-m4,cortex-m7,cortex-m55 --code-table \
    --json --html "$out/sweep.html" > "$out/sweep.json"
python3 - "$out/sweep.json" <<'PY'
import json, sys

report = json.load(open(sys.argv[1]))
print(f"{'configuration':<24} {'MACs':>7} {'layer KiB':>9} {'plan KiB':>8} "
      f"{'streamed KiB':>12} {'flash KiB':>9}  fits (only with mnv2gen's plan) "
      "[also with the input streamed]")
for c in report["configurations"]:
    t = c["targets"][0]
    only = f" ({', '.join(c['fits_with_plan_only'])})" if c["fits_with_plan_only"] else ""
    streamed = f" [{', '.join(c['fits_only_streamed'])}]" if c["fits_only_streamed"] else ""
    print(f"{c['name']:<24} {c['macs'] / 1e6:>6.0f}M {t['layer_by_layer_bytes'] / 1024:>9.0f} "
          f"{t['resident_plan_bytes'] / 1024:>8.0f} {t['streamed_plan_bytes'] / 1024:>12.0f} "
          f"{t['flash_bytes'] / 1024:>9.0f}  {', '.join(c['fits']) or '-'}{only}{streamed}")
PY
