#!/usr/bin/env bash
# The CUDA backend's checks and bench on a GPU machine that has the NVIDIA driver and python3 + torch + transformers but
# no Java and no Maven. Run from a folder G prepared by pack-for-device.sh (next to this file):
#   G/jre.tgz (jlink'ed JDK 25), G/lib/*.jar (gpu-engine classes + PTX, its test classes, runtime deps),
#   G/models/stories260K-hf, G/hf_peer.py
#   bash G/run-on-device.sh G OUT [parity] [bench] [llama] [peer]
# Writes logs to OUT: parity.log (CudaParityTest, CudaModelParityTest, DeviceMemoryTest), bench.log (GpuBench
# on stories260K), llama.log (GpuBench on a random 1.1B Llama), peer.log (hf_peer.py on the same weights).
set -u
G=$(cd "$1" && pwd); OUT=$2; shift 2
STAGES=${*:-parity bench llama peer}
mkdir -p /tmp/jre && tar xzf "$G/jre.tgz" -C /tmp/jre --strip-components=1
JAVA="/tmp/jre/bin/java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx24g -Djava.io.tmpdir=/tmp"
CP=$(ls "$G"/lib/*.jar | tr '\n' ':')
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee "$OUT/device.txt"
for s in $STAGES; do
  case $s in
    parity)
      timeout 240 $JAVA -Dengram.shared.dir="$G" -cp "$CP" io.engram.engine.backend.cuda.GpuTestRunner \
        io.engram.engine.backend.CudaParityTest io.engram.engine.backend.CudaModelParityTest \
        io.engram.engine.backend.cuda.DeviceMemoryTest 2>&1 | tee "$OUT/parity.log" | grep -v '^SUCCESSFUL' ;;
    bench)
      timeout 200 $JAVA -cp "$CP" io.engram.engine.bench.GpuBench --model "$G/models/stories260K-hf" \
        --contexts 4096,32768,131072 --policies FULL,STREAMING,INFLLM --full-max 32768 --runs 3 2>&1 | tee "$OUT/bench.log" ;;
    llama)
      [ -d /tmp/llama1b ] || python3 "$G/hf_peer.py" make-llama /tmp/llama1b 2>&1 | tee "$OUT/llama.log"
      timeout 200 $JAVA -cp "$CP" io.engram.engine.bench.GpuBench --model /tmp/llama1b --contexts 4096,32768 \
        --policies FULL,STREAMING --full-max 32768 --runs 2 --decode-steps 16 2>&1 | tee -a "$OUT/llama.log" ;;
    peer)
      (timeout 150 python3 "$G/hf_peer.py" stories "$G/models/stories260K-hf" --contexts 4096,32768,131072 --dtype float32
       [ -d /tmp/llama1b ] && timeout 120 python3 "$G/hf_peer.py" stories /tmp/llama1b --contexts 4096,32768) 2>&1 \
        | grep -v Warning | tee "$OUT/peer.log" ;;
  esac
done
