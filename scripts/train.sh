#!/usr/bin/env bash
# Reproduce the CPU demo end to end: synthesise the demo data (if missing), train the U-Net
# with configs/demo.yaml and print validation SSIM/PSNR against the zero-filled baseline.
#
#   scripts/train.sh                      # demo_data/ and runs/demo/ in the repository root
#   DATA=/tmp/demo RUN=/tmp/run scripts/train.sh --set run.epochs=5
#
# Extra arguments go to `mrirecon train` (e.g. --set section.key=value). A finished or
# interrupted run in $RUN is continued with --resume instead of starting over.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-demo_data}
RUN=${RUN:-runs/demo}
PY=${PYTHON:-python}

if [ ! -d "$DATA/train" ] || [ ! -d "$DATA/val" ]; then
  echo "== synthesising demo data into $DATA"
  "$PY" -m mrirecon data synth --demo --out "$DATA"
fi

start=$(date +%s)
if [ -f "$RUN/last.pt" ]; then
  echo "== resuming $RUN"
  "$PY" -m mrirecon train --resume "$RUN" "$@"
else
  echo "== training into $RUN"
  "$PY" -m mrirecon train --config configs/demo.yaml --data-root "$DATA" --out "$RUN" "$@"
fi
echo "== training took $(( $(date +%s) - start )) s; checkpoints: $RUN/best.pt $RUN/last.pt"
