#!/usr/bin/env bash
# Entry point of the Engram image: one image, four roles.
#   jobmanager [-Dkey=value ...]   Flink JobManager (session cluster), in the foreground
#   taskmanager [-Dkey=value ...]  Flink TaskManager, in the foreground
#   engram ARGS...                 the engram CLI (e.g. engram status, engram savepoint JOB_ID --stop)
#   init ARGS...                   create Engram's topics, then run `engram ARGS` unless a job is already RUNNING
#                                  (so `docker compose up` twice does not submit the job twice)
# Anything else is executed as a command.
set -euo pipefail

engram() {
  # shellcheck disable=SC2086 # ENGRAM_JVM_FLAGS is a list of flags
  java ${ENGRAM_JVM_FLAGS} ${ENGRAM_JAVA_OPTS:-} -jar "${FLINK_HOME}/usrlib/engram.jar" "$@"
}

role="${1:-help}"
[ $# -gt 0 ] && shift
case "${role}" in
  jobmanager)
    exec "${FLINK_HOME}/bin/jobmanager.sh" start-foreground "$@" ;;
  taskmanager)
    exec "${FLINK_HOME}/bin/taskmanager.sh" start-foreground "$@" ;;
  engram)
    # shellcheck disable=SC2086
    exec java ${ENGRAM_JVM_FLAGS} ${ENGRAM_JAVA_OPTS:-} -jar "${FLINK_HOME}/usrlib/engram.jar" "$@" ;;
  init)
    engram topics create
    running="$(engram status | awk 'NR > 1 && $2 == "RUNNING" { print $1 }')"
    if [ -n "${running}" ]; then
      echo "engram-init: job(s) already RUNNING: ${running}; not submitting again" >&2
      exit 0
    fi
    engram "$@" ;;
  help)
    sed -n '2,9p' "$0" ;;
  *)
    exec "${role}" "$@" ;;
esac
