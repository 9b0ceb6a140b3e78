#!/usr/bin/env bash
# Train configs/varnet_generalist_noharm.yaml on one GPU inside one device call, resumably.
#
#   RUN=runs/varnet-noharm LIMIT=480 scripts/gpu_varnet_retrain.sh [--set KEY=VALUE ...]
#
# Writes the validation split if missing (data/corpus_val, the configs' own command;
# deterministic from its seed). Without $RUN/last.pt the run starts from the committed
# work in progress ($FROM, checkpoints/varnet-noharm-wip: last.pt, config.yaml,
# metrics.jsonl) when there is one, else from scratch; `mrirecon train --resume` continues
# exactly from the last finished epoch.
# Training stops after LIMIT seconds (an unfinished epoch is lost, a finished one kept);
# then the run's config, metrics and resume checkpoint (split into 15 MB parts: the device
# tool returns files of at most 16 MiB; a later call joins them) and the best weights
# packed to fp16 are copied to $OUT/run (when OUT is set), with the weights of every
# SNAP-th epoch trained in this call (run.snapshot_every; default 1) packed as
# epoch-EEE-fp16.pt. Extra arguments go to `mrirecon train` (`--set KEY=VALUE`; on a
# resumed run, e.g. `--set run.epochs=80` extends it).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python || command -v python3)}
RUN=${RUN:-runs/varnet-noharm}
LIMIT=${LIMIT:-480}
WORKERS=${WORKERS:-12}
VAL=${VAL:-data/corpus_val}
FROM=${FROM:-checkpoints/varnet-noharm-wip}
SNAP=${SNAP:-1}

if [ ! -d "$VAL" ]; then
  echo "== writing the validation split into $VAL"
  "$PY" -m mrirecon data synth --corpus 16 --seed 100000 --slices 2 --oversample-prob 0.5 \
    --magnitude-noise-prob 0.5 --matrix 96 192 --out "$VAL" || exit 1
fi

if [ ! -f "$RUN/last.pt" ] && compgen -G "$RUN/last.pt.part-*" >/dev/null; then
  cat "$RUN"/last.pt.part-* >"$RUN/last.pt" && rm "$RUN"/last.pt.part-*
fi
if [ ! -f "$RUN/last.pt" ] && [ -f "$FROM/last.pt" ]; then
  echo "== continuing the committed run in $FROM"
  mkdir -p "$RUN" && cp "$FROM/last.pt" "$FROM/config.yaml" "$FROM/metrics.jsonl" "$RUN/" || exit 1
fi

start=$SECONDS
if [ -f "$RUN/last.pt" ]; then
  echo "== resuming $RUN for at most ${LIMIT} s"
  timeout "$LIMIT" "$PY" -m mrirecon train --resume "$RUN" --data-root "$VAL" \
    --set "data.num_workers=$WORKERS" --set "run.snapshot_every=$SNAP" "$@"
else
  echo "== training $RUN for at most ${LIMIT} s"
  timeout "$LIMIT" "$PY" -m mrirecon train --config configs/varnet_generalist_noharm.yaml \
    --data-root "$VAL" --out "$RUN" --set "data.num_workers=$WORKERS" \
    --set "run.snapshot_every=$SNAP" "$@"
fi
rc=$?
echo "== training exited with $rc after $((SECONDS - start)) s (124: stopped at the limit)"
tail -n 3 "$RUN/metrics.jsonl" 2>/dev/null | cut -c1-200

if [ -n "${OUT:-}" ] && [ -f "$RUN/last.pt" ]; then
  mkdir -p "$OUT/run"
  cp "$RUN/config.yaml" "$RUN/metrics.jsonl" "$OUT/run/"
  split -b 15000000 "$RUN/last.pt" "$OUT/run/last.pt.part-"
  if [ -f "$RUN/best.pt" ]; then
    "$PY" -m mrirecon models pack "$RUN/best.pt" --out "$OUT/run/best-fp16.pt"
  fi
  for snap in "$RUN"/epoch-*.pt; do
    [ -e "$snap" ] || continue
    "$PY" -m mrirecon models pack "$snap" --out "$OUT/run/$(basename "$snap" .pt)-fp16.pt"
  done
  ls -la "$OUT/run"
fi
[ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]
