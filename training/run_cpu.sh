#!/usr/bin/env bash
# Trains engram-tiny on a CPU in stages (training/PROBES.md), each resumable: rerun the same command after an
# interruption and every finished stage is skipped, an unfinished one resumes from its checkpoint.
#   training/run_cpu.sh DATA RUN [CPU_MINUTES [ECHO_MINUTES]]
#     DATA: the folder `python -m engram_train.prepare` wrote; RUN: where stages write (RUN/induct, RUN/digits, ...)
#   1. cpu-induct: copy runs only (60-64 tokens, twice), until the copied tokens' loss is below 0.3, at most 15 minutes
#   2. cpu-echo:   dense QA (at most 40 filler words) whose answers restate the key and copy the fact, a fifth digit
#                  copy runs, ECHO_MINUTES (default 40)
#   3. cpu-echo2:  a third copy sequences (mostly natural-text passages repeated), QA, sequences of 512 then 1024, 40 min
#   4. cpu:        filler grows to the window (sequences 256 -> 512 -> 1024), CPU_MINUTES (default 110; 0: skip)
# The model lands in RUN/cpu/engram-tiny (safetensors, tokenizer, GGUF); evaluate it with engram_train.evaluate.
set -euo pipefail
data=$1
run=$2
cpu_minutes=${3:-110}
echo_minutes=${4:-40}
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
stage echo cpu-echo "$run/induct/ckpt.pt" --minutes "$echo_minutes" --fp32
stage echo2 cpu-echo2 "$run/echo/ckpt.pt" --minutes 40 --fp32
[ "$cpu_minutes" = 0 ] || stage cpu cpu "$run/echo2/ckpt.pt" --minutes "$cpu_minutes" --fp32
[ "$cpu_minutes" = 0 ] && echo "model: $run/echo2/engram-tiny" || echo "model: $run/cpu/engram-tiny"
