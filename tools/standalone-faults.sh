#!/usr/bin/env bash
# Fault test on a real Spark standalone cluster (master, worker and executor JVMs from Maven
# Central jars, see ../shared/reference/spark-standalone-from-maven.md), with the shaded jar and the
# bundled model:
#   1. executor kill: kill -9 the executor JVM after the first batch committed; the job must finish;
#   2. driver kill: kill -9 spark-submit after the first batch committed, then submit again (resume);
# each output is then checked with DuckDB (ExactlyOnceCheck: each id once in outputs/, each
# (id, layer, chunk) once in kv_cache/, every *.parquet readable).
#   tools/standalone-faults.sh              # WORK=/tmp/tp-standalone COPIES=80 (36 images each)
# Builds the shaded jar first (`mvn -q -pl jobs -am package -DskipTests`). Takes ~3 minutes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${WORK:-/tmp/tp-standalone}"
copies="${COPIES:-80}"
batch_rows="${BATCH_ROWS:-1000}"
rm -rf "$work"
mkdir -p "$work"
log() { echo "[faults $(date +%H:%M:%S)] $*"; }

log "building the shaded jar and the test classes"
(cd "$root" && mvn -q -B -pl jobs -am package -DskipTests && mvn -q -B -pl jobs -am test-compile \
  && mvn -q -B -pl jobs -am dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile="$work/test-cp.txt")
jar="$(ls "$root"/jobs/target/tokenpress-jobs-*-shaded.jar)"

export SPARK_HOME="$work/spark" SPARK_SCALA_VERSION=2.13
mkdir -p "$SPARK_HOME/jars" "$SPARK_HOME/conf"
echo "jars from Maven Central" > "$SPARK_HOME/RELEASE"
# Spark's runtime (what the shaded jar leaves to the cluster): the launcher class path less what the jar carries.
tr ':' '\n' < "$root/jobs/target/classpath.txt" | grep -Ev 'onnxruntime|/ai/djl/|tribuo|/net/java/dev/jna/' \
  | while read -r j; do ln -sf "$j" "$SPARK_HOME/jars/"; done
opens="--add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
--add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
--add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
--add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
--add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
--add-opens=java.base/sun.security.action=ALL-UNNAMED --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
-Djdk.reflect.useDirectMethodHandle=false"
opens="$(echo $opens)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
# shellcheck disable=SC2086
java $opens -cp "$SPARK_HOME/jars/*" org.apache.spark.deploy.master.Master --host 127.0.0.1 --port 7077 \
  --webui-port 8090 > "$work/master.log" 2>&1 &
pids+=($!)
sleep 4
# shellcheck disable=SC2086
java $opens -cp "$SPARK_HOME/jars/*" org.apache.spark.deploy.worker.Worker --host 127.0.0.1 --cores 2 --memory 4g \
  --webui-port 8091 --work-dir "$work/worker" spark://127.0.0.1:7077 > "$work/worker.log" 2>&1 &
pids+=($!)
sleep 4

log "corpus: $copies copies of datasets/sample/images"
for ((c = 0; c < copies; c++)); do
  mkdir -p "$work/corpus/c$c" && cp -r "$root/datasets/sample/images/." "$work/corpus/c$c/"
done
n=$(find "$work/corpus" -type f | wc -l)

submit() {  # (submit OUTPUT_DIR LOG): run in a subshell, which java replaces (so $! is the driver JVM)
  # shellcheck disable=SC2086
  exec java $opens -cp "$SPARK_HOME/jars/*" org.apache.spark.deploy.SparkSubmit --master spark://127.0.0.1:7077 \
    --deploy-mode client --class dev.tokenpress.jobs.compress.CompressJob \
    --conf spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1 \
    --conf "spark.executor.extraJavaOptions=$opens" --conf spark.executor.cores=2 --conf spark.executor.memory=2g \
    "$jar" --set model.bundle="$root/models/tiny-llava-shapes" --set input.path="$work/corpus" \
    --set output.path="$1" --set output.batchRows="$batch_rows" --set run.progressIntervalSeconds=2 > "$2" 2>&1
}

await_first_commit() {  # await_first_commit OUTPUT_DIR PID
  while ! compgen -G "$1/outputs/*.parquet" > /dev/null; do
    kill -0 "$2" 2>/dev/null || { log "job ended before its first commit"; return 1; }
    sleep 0.2
  done
}

check() {  # check OUTPUT_DIR
  java -cp "$root/jobs/target/test-classes:$root/jobs/target/classes:$(cat "$work/test-cp.txt")" \
    dev.tokenpress.jobs.compress.ExactlyOnceCheck "$1" "$n" 0
}

log "1. executor kill: $n images, batches of $batch_rows"
start=$(date +%s)
(submit "$work/out-executor" "$work/executor-kill.log") &
job=$!
await_first_commit "$work/out-executor" "$job"
sleep 1
executor=$(pgrep -f CoarseGrainedExecutorBackend | head -1)
log "killing executor JVM $executor"
kill -9 "$executor"
wait "$job" && status=0 || status=$?
log "job exit status $status after $(( $(date +%s) - start )) s (expected 0); $(grep -c 'Lost executor\|ExecutorLost\|lost executor' "$work/executor-kill.log" || true) executor-loss log lines"
grep '\[tokenpress\] done' "$work/executor-kill.log" || true
check "$work/out-executor"

log "2. driver kill: spark-submit killed after the first commit, then resumed"
(submit "$work/out-driver" "$work/driver-kill.log") &
job=$!
await_first_commit "$work/out-driver" "$job"
sleep 1
log "killing spark-submit JVM $job"
kill -9 "$job"
wait "$job" 2>/dev/null || true
log "after the kill: $(find "$work/out-driver/_tokenpress" -type f 2>/dev/null | wc -l) files under _tokenpress/ (staging, journals)"
sleep 3
(submit "$work/out-driver" "$work/driver-resume.log") && status=0 || status=$?
log "resume exit status $status (expected 0)"
grep '\[tokenpress\] \(run\|removed\|completed\|done\)' "$work/driver-resume.log" || true
check "$work/out-driver"
log "logs in $work"
