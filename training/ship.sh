#!/usr/bin/env bash
# Ships a trained stage as models/engram-tiny: the export (safetensors, tokenizer, GGUF), the loss plot over every
# stage, the PyTorch evaluation on held-out examples (eval.json, eval_examples.jsonl.gz for `engram bench qa`), and the
# transformers golden that ReferenceGoldenTest checks the shipped files against.
#   training/ship.sh DATA RUN CONFIG PER_CELL STAGE [STAGE ...]
#     the last STAGE's checkpoint ships; the stages before it are the ones it was trained through, in order (their
#     logs make the loss plot and the token count). Example:
#   training/ship.sh /root/engram-train/data /root/engram-train/r3 cpu-echo2 50 induct echo echo2
# A run continued from a shipped model (--init models/engram-tiny) names that model's training.json in
# ENGRAM_BASE_TRAINING (copy it before this script replaces the folder): its stages come first in the new training.json
# and count in the totals; the loss plot shows the stages whose logs RUN holds.
set -euo pipefail
data=$1
run=$2
config=$3
per_cell=$4
shift 4
stages=("$@")
last=${stages[${#stages[@]}-1]}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
py=${ENGRAM_TRAINING_PYTHON:-python3}
out=$repo/models/engram-tiny
cd "$here"
rm -rf "$out"
"$py" -m engram_train.export --ckpt "$run/$last/ckpt.pt" --config "$config" --data "$data" --out "$out" \
  --note "stages: ${stages[*]} (training/run_cpu.sh)"
# the loss over all stages, tokens and seconds counted from the first
"$py" - "$run" "$out" "${stages[@]}" <<'EOF'
import json, sys  # noqa: E401
from pathlib import Path
from engram_train import evaluate
run, out, stages = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
import os
rows, tokens0, seconds0, steps0 = [], 0, 0.0, 0
per_stage = []
base = os.environ.get("ENGRAM_BASE_TRAINING")
if base:
    for st in json.loads(Path(base).read_text())["stages"]:
        per_stage.append(st)
        tokens0 += st["tokens"]
        seconds0 += st["seconds"]
for st in stages:
    recs = [json.loads(l) for l in (run / st / "train_log.jsonl").read_text().splitlines() if l.strip()]
    recs = [r for r in recs if "loss" in r]
    for r in recs:
        rows.append(dict(r, tokens=r["tokens"] + tokens0, elapsed=r["elapsed"] + seconds0, stage=st))
    last = recs[-1]
    per_stage.append(dict(stage=st, steps=last["step"], tokens=last["tokens"], seconds=round(last["elapsed"])))
    tokens0 += last["tokens"]
    seconds0 += last["elapsed"]
log = run / "all_stages_log.jsonl"
log.write_text("".join(json.dumps(r) + "\n" for r in rows))
evaluate.plot(log, out / "loss.png")
meta = json.loads((out / "training.json").read_text())
meta.update(stages=per_stage, total_tokens=tokens0, total_cpu_seconds=round(seconds0))
(out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
print(json.dumps(meta))
EOF
# ENGRAM_REUSE_EVAL=1: RUN/eval already holds this checkpoint's evaluation with the same settings (run on its export)
if [ -z "${ENGRAM_REUSE_EVAL:-}" ]; then
  "$py" -m engram_train.evaluate "$out" "$data" "$run/eval" --per-cell "$per_cell" --lengths 256 512 1024 --ppl-window 512
fi
cp "$run/eval/eval.json" "$out/eval.json"
gzip -9 -c "$run/eval/eval_examples.jsonl" > "$out/eval_examples.jsonl.gz"
# the ranking projection InfLLM and EM-LLM rank units with (rank_adapter: learned with the model frozen, on long
# training examples read through the retrieval layout; held-out examples measure it)
"$py" -m engram_train.rank_adapter collect "$out" "$data" "$run/rank-held.pt" --examples 200 --split heldout --seed 6161
"$py" -m engram_train.rank_adapter collect "$out" "$data" "$run/rank-train.pt" --examples 800 --split train
"$py" -m engram_train.rank_adapter fit "$run/rank-train.pt" "$run/rank-held.pt" "$out" --epochs 600 --rank-reg 1e-3 \
  --low-rank 4 --lr 1e-2
"$py" "$repo/gpu-engine/src/test/reference/reference_logits.py" "$repo/gpu-engine/src/test/resources/golden" \
  "$out=engram-tiny"
du -sh "$out"
