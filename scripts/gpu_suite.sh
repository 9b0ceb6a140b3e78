#!/usr/bin/env bash
# Every GPU test and benchmark in one call, sized to finish in under 8 minutes on one GPU.
#
#   scripts/gpu_suite.sh            # writes gpu_suite/*.log (or $OUT/*.log when OUT is set)
#
# Each step has its own time limit; a failed or timed-out step is reported and the rest
# still run. The exit code is non-zero if any step failed. Record what it prints in
# docs/benchmarks.md with the device (nvidia-smi line below) and the versions.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python || command -v python3)}
# The benchmarks' reference, fastmri, is not in a GPU machine's image: carry its wheel
# (`pip download --no-deps fastmri==0.3.0 -d .whl`, `.whl` in the call's carry).
if ! "$PY" -c "import fastmri" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl &&
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
LOGS=${OUT:-gpu_suite}
mkdir -p "$LOGS"
failed=0

step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s): $*"
  local t0=$SECONDS
  if timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1; then
    echo "   ok in $((SECONDS - t0)) s"
  else
    echo "   FAILED (exit $?) after $((SECONDS - t0)) s; tail of $LOGS/$name.log:"
    tail -n 15 "$LOGS/$name.log" | sed 's/^/   | /'
    failed=1
  fi
  tail -n 12 "$LOGS/$name.log" | sed 's/^/   > /'
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOGS/device.txt"
"$PY" -c "import torch, mrirecon; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'mrirecon', mrirecon.__version__)" | tee -a "$LOGS/device.txt"

# GPU-only tests (bf16 U-Net inference, CS solver on CUDA, bf16 + channels_last + compile training).
step gpu_tests 150 "$PY" -m pytest -q -m gpu -p no:cacheprovider
# E2E-VarNet: fastMRI's size (12 cascades, 15 coils, 640 x 368), fp32 and bf16 autocast.
step varnet_fp32 90 "$PY" scripts/bench_varnet.py --device cuda --cascades 12 --coils 15 --height 640 --width 368 --repeats 3
step varnet_bf16 90 "$PY" scripts/bench_varnet.py --device cuda --cascades 12 --coils 15 --height 640 --width 368 --repeats 3 --amp
# U-Net training throughput against fastmri's Unet.
step train 120 "$PY" scripts/bench_train.py --device cuda --quick
exit $failed
