#!/usr/bin/env bash
# Packs what run-on-device.sh needs into folder G (default: .gpu of the checkout the device tool sends), after
# `mvn -o test-compile -pl gpu-engine` (with nvcc present, so the PTX is in target/classes). Keep G ignored by git.
set -eu
ROOT=$(cd "$(dirname "$0")/../../../.." && pwd)
G=${1:-$ROOT/.gpu}
SHARED=${SHARED:-$ROOT/../shared}
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
rm -rf "$G" && mkdir -p "$G/lib" "$G/models"
test -f "$ROOT/gpu-engine/target/classes/io/engram/engine/backend/cuda/engram_kernels.ptx"
(cd "$ROOT/gpu-engine/target/classes" && "$JAVA_HOME/bin/jar" cf "$G/lib/engine.jar" .)
(cd "$ROOT/gpu-engine/target/test-classes" && "$JAVA_HOME/bin/jar" cf "$G/lib/engine-tests.jar" .)
(cd "$ROOT" && mvn -B -q -ntp -o dependency:build-classpath -pl gpu-engine -Dmdep.outputFile=/tmp/engram-gpu-cp.txt -Dmdep.includeScope=test)
# only what the CUDA checks and the bench load: no llama.cpp or tokenizer natives
tr ':' '\n' < /tmp/engram-gpu-cp.txt | grep -E 'jackson|slf4j|log4j|jcuda|junit|opentest4j|apiguardian|assertj' \
  | xargs -I{} cp {} "$G/lib/"
# of JCuda's natives only the driver API binding is loaded: drop the runtime, NVRTC and PTX-compiler bindings (8 MiB)
N=$(ls "$G"/lib/jcuda-natives-*.jar) && rm -rf /tmp/engram-natives && mkdir /tmp/engram-natives \
  && (cd /tmp/engram-natives && unzip -q "$N" && rm -f lib/libJCudaRuntime* lib/libJNvrtc* lib/libJNvPTXCompiler* \
  && rm "$N" && "$JAVA_HOME/bin/jar" cf "$N" .)
rm -rf /tmp/engram-jre && "$JAVA_HOME/bin/jlink" --add-modules java.base,java.logging,jdk.unsupported,jdk.incubator.vector,java.management,java.naming,java.xml,java.sql,java.desktop \
  --strip-debug --no-man-pages --no-header-files --compress=zip-9 --output /tmp/engram-jre 2>/dev/null
strip --strip-unneeded /tmp/engram-jre/lib/server/libjvm.so || true
tar czf "$G/jre.tgz" -C /tmp engram-jre
cp -r "$SHARED/models/stories260K-hf" "$G/models/"
cp "$ROOT/gpu-engine/src/test/gpu/run-on-device.sh" "$ROOT/gpu-engine/src/test/gpu/hf_peer.py" "$G/"
du -sh "$G"
