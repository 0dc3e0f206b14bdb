#!/usr/bin/env bash
# Train on a Cloud TPU VM pod slice: create it, install this repo on every worker, run the same
# command on all workers (JAX finds the other hosts by itself), fetch the results from worker 0.
#
#   TPU_NAME=speechft-v4 ZONE=us-central2-b PROJECT=my-project ACCELERATOR_TYPE=v4-32 \
#   CONFIG=configs/paper/hubert_base_asr.yaml ./launch/tpu_pod.sh [create|install|run|fetch|all|delete]
#
# Needs: gcloud (authenticated). Variables: TPU_NAME, ZONE, PROJECT, ACCELERATOR_TYPE, CONFIG;
# optional RUNTIME_VERSION (default tpu-ubuntu2204-base), REMOTE_DIR (default speechft-jax),
# OUTPUT_DIR (the run's output_dir, default: read from CONFIG), FETCH_TO (default ./runs-from-tpu).
# The run's output_dir should be a bucket path (gs://...) or a disk all workers share only if you
# want checkpoints to survive the VM; process 0 writes logs and the exported encoder.
set -euo pipefail

: "${TPU_NAME:?set TPU_NAME (the TPU VM name)}"
: "${ZONE:?set ZONE (e.g. us-central2-b)}"
: "${PROJECT:?set PROJECT (the GCP project id)}"
: "${ACCELERATOR_TYPE:?set ACCELERATOR_TYPE (e.g. v4-32)}"
: "${CONFIG:?set CONFIG (the training YAML, relative to the repo root)}"
RUNTIME_VERSION="${RUNTIME_VERSION:-tpu-ubuntu2204-base}"
REMOTE_DIR="${REMOTE_DIR:-speechft-jax}"
FETCH_TO="${FETCH_TO:-./runs-from-tpu}"
[[ -f "$CONFIG" ]] || { echo "error: CONFIG=$CONFIG: no such file (run from the repo root)" >&2; exit 2; }
command -v gcloud >/dev/null || { echo "error: gcloud is not installed or not on PATH" >&2; exit 2; }

tpu=(gcloud compute tpus tpu-vm --project "$PROJECT" --zone "$ZONE")
on_all() { "${tpu[@]}" ssh "$TPU_NAME" --worker=all --command "$1"; }

create() { "${tpu[@]}" create "$TPU_NAME" --accelerator-type "$ACCELERATOR_TYPE" --version "$RUNTIME_VERSION"; }
install() {
  tar czf /tmp/speechft-jax.tgz --exclude=.git --exclude=runs --exclude='*.pyc' .
  "${tpu[@]}" scp /tmp/speechft-jax.tgz "$TPU_NAME":/tmp/ --worker=all
  on_all "mkdir -p $REMOTE_DIR && tar xzf /tmp/speechft-jax.tgz -C $REMOTE_DIR && cd $REMOTE_DIR && \
          python3 -m pip install -q -e . 'jax[tpu]'"
}
run() { on_all "cd $REMOTE_DIR && python3 -m speechft_jax.train --config $CONFIG"; }
fetch() {
  local out="${OUTPUT_DIR:-$(python3 -c "import yaml,sys; print(yaml.safe_load(open('$CONFIG'))['output_dir'])")}"
  mkdir -p "$FETCH_TO"
  "${tpu[@]}" scp --recurse "$TPU_NAME":"$REMOTE_DIR/$out" "$FETCH_TO" --worker=0
}
delete() { "${tpu[@]}" delete "$TPU_NAME" --quiet; }

case "${1:-all}" in
  create) create ;; install) install ;; run) run ;; fetch) fetch ;; delete) delete ;;
  all) create && install && run && fetch ;;
  *) echo "usage: $0 [create|install|run|fetch|all|delete]" >&2; exit 2 ;;
esac
