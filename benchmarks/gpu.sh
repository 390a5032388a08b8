#!/usr/bin/env bash
# Everything the speed work measures on a GPU, as one script that fits a short machine lease (about
# 9 minutes): the sweep benchmark, a whole round per protocol against local training, the samples/s
# table (CNN first: the reference numbers are for it) and PyTorch's yardsticks beside it.
#
#   TALLYSIM_DATA=<dir holding fashion_mnist.npz> OUT=<dir> benchmarks/gpu.sh
#
# Each part runs under its own time limit and writes its JSON and log into $OUT as soon as it ends, so
# a part that runs long costs only itself. Runs from a checkout (no install needed): PYTHONPATH=. .
set -u
OUT=${OUT:-/tmp/tallysim-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PY:-python3}
start=$SECONDS

part() {   # part NAME LIMIT_S COMMAND...: run with a limit, log to $OUT/NAME.log, say how it ended
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    echo "== $name (limit ${limit}s): $*"
    timeout "$limit" "$@" > >(tee "$OUT/$name.log") 2>&1
    local rc=$?
    echo "== $name: rc=$rc in $((SECONDS - t0))s (total $((SECONDS - start))s)"
}

part env 30 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv; \
  $PY -c 'import jax, flax, optax, torch; print(\"jax\", jax.__version__, \"flax\", flax.__version__, \
\"optax\", optax.__version__, \"torch\", torch.__version__, jax.devices())'"
part sweep "${SWEEP_S:-170}" $PY -m tallysim bench --sweep --sample "${SAMPLE:-6}" --json "$OUT/sweep.json"
part round "${ROUND_S:-110}" $PY -m tallysim bench --round --json "$OUT/round.json"
part table_cnn "${CNN_S:-110}" $PY -m tallysim bench --full --model cnn --peers 10,100,1000 \
  --dtype bfloat16,float32 --json "$OUT/table_cnn.json"
part torch "${TORCH_S:-60}" bash -c "$PY benchmarks/torch_ref.py --peers 100 --bf16 > $OUT/torch_bf16.jsonl; \
  $PY benchmarks/torch_ref.py --peers 100 > $OUT/torch_f32.jsonl; cat $OUT/torch_*.jsonl"
part table_rest "${REST_S:-90}" $PY -m tallysim bench --full --model mlp,lenet,resnet8 --peers 100,1000 \
  --dtype bfloat16 --loop-max 100 --json "$OUT/table_rest.json"
echo "== all parts done in $((SECONDS - start))s"
