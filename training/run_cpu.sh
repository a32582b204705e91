#!/usr/bin/env bash
# Trains engram-tiny on a CPU in stages (training/PROBES.md), each resumable: rerun the same command after an
# interruption and every finished stage is skipped, an unfinished one resumes from its checkpoint.
#   training/run_cpu.sh DATA RUN [CPU_MINUTES]
#     DATA: the folder `python -m engram_train.prepare` wrote; RUN: where stages write (RUN/induct, RUN/echo, ...)
# The stages, in the order and with the budgets that made the shipped models/engram-tiny (PROBES.md, recipe 2):
#   1. induct (cpu-induct):      random runs of 60-64 tokens repeated once, until copied tokens are < 0.3 nats (~8 min)
#   2. echo (cpu-echo):          dense echo QA, 20% digit runs, sequences of 256 (16 min)
#   3. echo2 (cpu-echo2):        a third copy sequences, prose passages among them, sequences of 512 (8 min)
#   4. itext (cpu-induct-text):  prose passages repeated once: word-level copying (10 min, or < 0.3 nats)
#   5. echo3 (cpu-echo2):        the QA stage again, now that words are copied (28 min)
#   6. echo4 (cpu-echo2):        the same at lr 3e-4 (16 min)
#   7. echo5 (cpu-echo5):        examples at full distance, a quarter unanswerable (80 min)
#   8. cpu (cpu):                optional curriculum to the full window, CPU_MINUTES (default 0: skipped)
# The model lands in RUN/echo5/engram-tiny (or RUN/cpu/...); training/ship.sh makes models/engram-tiny from it.
set -euo pipefail
data=$1
run=$2
cpu_minutes=${3:-0}
here=$(cd "$(dirname "$0")" && pwd)
py=${ENGRAM_TRAINING_PYTHON:-python3}
export PYTHONUNBUFFERED=1
cd "$here"
stage() {  # name config init extra...
  local name=$1 config=$2 init=$3
  shift 3
  if [ -f "$run/$name/engram-tiny/training.json" ]; then echo "stage $name: done"; return; fi
  echo "stage $name ($config) from ${init:-scratch}, $(date -u +%H:%M)"
  local args=(--config "$config" --data "$data" --out "$run/$name" --skip-eval "$@")
  [ -n "$init" ] && args+=(--init "$init")
  nice -n 10 "$py" -m engram_train.train "${args[@]}" 2>&1 | tee -a "$run/$name.log" | grep -v "^step" || true
  [ -f "$run/$name/engram-tiny/training.json" ] || { echo "stage $name did not finish: see $run/$name.log"; exit 1; }
}
mkdir -p "$run"
stage induct cpu-induct "" --minutes 15 --stop-loss 0.3 --fp32
stage echo cpu-echo "$run/induct/ckpt.pt" --minutes 16 --fp32
stage echo2 cpu-echo2 "$run/echo/ckpt.pt" --minutes 8 --fp32
stage itext cpu-induct-text "$run/echo2/ckpt.pt" --stop-loss 0.3 --fp32
stage echo3 cpu-echo2 "$run/itext/ckpt.pt" --minutes 28 --fp32
stage echo4 cpu-echo2 "$run/echo3/ckpt.pt" --minutes 16 --lr 3e-4 --fp32
stage echo5 cpu-echo5 "$run/echo4/ckpt.pt" --minutes 80 --fp32
if [ "$cpu_minutes" = 0 ]; then echo "model: $run/echo5/engram-tiny"; exit 0; fi
stage cpu cpu "$run/echo5/ckpt.pt" --minutes "$cpu_minutes" --fp32
echo "model: $run/cpu/engram-tiny"
