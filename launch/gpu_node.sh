#!/usr/bin/env bash
# Train on every GPU of one machine. One process drives all local GPUs (JAX's recommended
# single-node set-up): the mesh's `data` axis spans them (set mesh.fsdp in the config to shard
# the model too). With NUM_PROCESSES > 1 it instead starts one process per GPU on a localhost
# coordinator (JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID), like a cluster.
#
#   CONFIG=configs/paper/hubert_base_asr.yaml ./launch/gpu_node.sh [--set key=value ...]
#
# Variables: CONFIG (required); optional NUM_PROCESSES (default 1), PORT (default 12355),
# CUDA_VISIBLE_DEVICES (which GPUs). Needs `pip install -e . "jax[cuda12]"`.
set -euo pipefail

: "${CONFIG:?set CONFIG (the training YAML)}"
[[ -f "$CONFIG" ]] || { echo "error: CONFIG=$CONFIG: no such file" >&2; exit 2; }
NUM_PROCESSES="${NUM_PROCESSES:-1}"
PORT="${PORT:-12355}"
python3 -c "import jax, sys; n = sum(d.platform == 'gpu' for d in jax.devices()); \
sys.exit(0 if n else 'error: JAX sees no GPU (install jax[cuda12] and check CUDA_VISIBLE_DEVICES)')"

if [[ "$NUM_PROCESSES" == 1 ]]; then
  exec python3 -m speechft_jax.train --config "$CONFIG" "$@"
fi
IFS=, read -r -a gpus <<< "${CUDA_VISIBLE_DEVICES:-$(seq -s, 0 $((NUM_PROCESSES - 1)))}"
(( ${#gpus[@]} >= NUM_PROCESSES )) || { echo "error: NUM_PROCESSES=$NUM_PROCESSES but only ${#gpus[@]} GPU(s) listed" >&2; exit 2; }
pids=()
for ((i = 0; i < NUM_PROCESSES; i++)); do
  CUDA_VISIBLE_DEVICES="${gpus[$i]}" JAX_COORDINATOR_ADDRESS="127.0.0.1:$PORT" \
  JAX_NUM_PROCESSES="$NUM_PROCESSES" JAX_PROCESS_ID="$i" \
    python3 -m speechft_jax.train --config "$CONFIG" "$@" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit "$status"
