#!/usr/bin/env bash
# Runs engram-tiny's training on the lent GPU machine (the device tool runs this from the repository root).
#   training/run_gpu.sh start SECONDS   # checks the machine, starts training detached, follows the log
#   training/run_gpu.sh wait SECONDS    # follows the log until training+export+eval are done or SECONDS pass
#   training/run_gpu.sh collect         # copies the model (<=16 MiB files) and results into $OUT
# Data (corpus/ + tokenizer/) is carried in .train/ (see training/README.md). Runs live in /root/engram-run.
set -uo pipefail
RUN=/root/engram-run
mode=$1
secs=${2:-540}
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")"
follow() {
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    if grep -q "held-out prose perplexity\|Traceback" $RUN/log.txt 2>/dev/null && ! pgrep -f engram_train.train >/dev/null; then break; fi
    sleep 10
  done
  grep -v "^step" $RUN/log.txt | tail -40
  grep "^step" $RUN/log.txt | tail -5
}
case $mode in
  start)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, transformers, tokenizers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__)"
    mkdir -p $RUN
    setsid nohup python3 -m engram_train.train --config gpu --data ../.train --out $RUN "${@:3}" > $RUN/log.txt 2>&1 < /dev/null &
    sleep 5
    follow ;;
  wait) follow ;;
  collect)
    M=$RUN/engram-tiny
    ls -la $M
    cp $M/model-*.safetensors "$OUT"/ 2>/dev/null || cp $M/model.safetensors "$OUT"/
    split -b 15M -d $M/engram-tiny.bf16.gguf "$OUT"/engram-tiny.bf16.gguf.part
    gzip -c $RUN/eval_examples.jsonl > "$OUT"/eval_examples.jsonl.gz
    tar czf "$OUT"/small.tgz -C $RUN log.txt train_log.jsonl eval.json loss.png -C $M --exclude='*.safetensors' --exclude='*.gguf' .
    ls -la "$OUT" ;;
esac
