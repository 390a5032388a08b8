#!/usr/bin/env bash
# What the speed work measures on a GPU, as one script that fits a 15-minute machine lease (docs/gpu.md):
# by default the samples/s table of every model against plain vmap and the dense bound (issue 35), CNN
# first, PyTorch's yardsticks beside it, and the convolution formulations side by side, at most 9
# minutes of limits (one 10-minute command); at the end one short table
# (benchmarks/gpu_table.py) from the JSON the parts wrote, also saved as $OUT/table.md.
#
#   TALLYSIM_DATA=<dir holding fashion_mnist.npz> OUT=<dir> benchmarks/gpu.sh
#   PARTS="sweep round" OUT=<dir> benchmarks/gpu.sh        # the other parts (measured 2026-11-27)
#
# PARTS picks parts by name, in the order given (default: env table_cnn table_rest torch conv; also:
# xla_flags, sweep, round). `conv` times the convolution formulations side by side (issue 35, section 2)
# and prints the AUTO_CONV rows to paste into tallysim/sim/conv.py (a formulation that fails to compile or
# run there, say the Pallas kernels, is a `failed` row with its reason and the part goes on); `xla_flags` the CNN under XLA flags
# that change the convolution's layout. Each part runs under its own time limit (seconds, overridable: CNN_S=200 ...) and writes its
# JSON and log into $OUT; the bench parts rewrite their JSON after every row, so a part that runs out of
# time keeps the rows it measured and costs only itself. Runs from a checkout (no install needed):
# PYTHONPATH=. . PARTS=table only prints the tables from the JSON already in $OUT.
#
# A dry run anywhere (a CPU, before a lease): PEERS, STEPS and BATCH replace every part's peer counts,
# local steps and batch (defaults: the parts' own lists, 20 steps of batch 32). On a 2-core CPU compiling
# dominates (bfloat16 is emulated there: ~30 s a program), so raise the limits too (docs/gpu.md):
#   JAX_PLATFORMS=cpu PEERS=1 STEPS=1 BATCH=2 CNN_S=900 REST_S=900 CONV_S=900 OUT=/tmp/dry benchmarks/gpu.sh
set -u
OUT=${OUT:-/tmp/tallysim-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PY:-python3}
PARTS=${PARTS:-env table_cnn table_rest torch conv}
CONVS=${CONVS:-xla,im2col,nchw,pallas}     # the conv part's formulations (model.conv values)
IMPLS=${IMPLS:-tallysim,vmap_ref,dense}     # the table's columns; add loop for the per-peer loop
STEPS=${STEPS:-20}                          # local steps a peer, every part (bench --full's 20)
BATCH=${BATCH:-32}                          # examples a local step, every part
peers() { echo "${PEERS:-$1}"; }            # a part's peer counts: its own list, unless PEERS is set
start=$SECONDS

part() {   # part NAME LIMIT_S COMMAND...: run with a limit, log to $OUT/NAME.log, say how it ended
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    echo "== $name (limit ${limit}s): $*"
    timeout "$limit" "$@" > >(tee "$OUT/$name.log") 2>&1
    local rc=$?
    echo "== $name: rc=$rc in $((SECONDS - t0))s (total $((SECONDS - start))s)"
}

for p in $PARTS; do
  case $p in
    env) part env 45 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv; \
  $PY -c 'import jax, flax, optax; print(\"jax\", jax.__version__, \"flax\", flax.__version__, \
\"optax\", optax.__version__, jax.devices())'; $PY -c 'import importlib.util as u; print(\"torch\", \
  __import__(\"torch\").__version__ if u.find_spec(\"torch\") else \"not installed (part torch skips)\")'" ;;
    table_cnn) part table_cnn "${CNN_S:-150}" $PY -m tallysim bench --full --model cnn --peers "$(peers 100,1000,10)" \
  --steps "$STEPS" --batch "$BATCH" --dtype bfloat16,float32 --impl "$IMPLS" --json "$OUT/table_cnn.json" ;;
    table_rest) part table_rest "${REST_S:-150}" $PY -m tallysim bench --full --model lenet,mlp,resnet8 \
  --peers "$(peers 100,1000)" --steps "$STEPS" --batch "$BATCH" --dtype bfloat16 --impl "$IMPLS" --json "$OUT/table_rest.json" ;;
    torch) if ! $PY -c 'import torch' 2>/dev/null; then     # not a tallysim dependency: skip, cost nothing
        echo "== torch: skipped (PyTorch is not installed for $PY; the table has no PyTorch rows)"; continue; fi
      tp=$(peers 100)
      part torch "${TORCH_S:-60}" bash -c "$PY benchmarks/torch_ref.py --peers $tp --steps $STEPS --batch $BATCH --bf16 > $OUT/torch_bf16.jsonl; \
  $PY benchmarks/torch_ref.py --peers $tp --steps $STEPS --batch $BATCH > $OUT/torch_f32.jsonl; cat $OUT/torch_*.jsonl" ;;
    conv) part conv "${CONV_S:-135}" $PY -m tallysim bench --full --model cnn,lenet,resnet8 --peers "$(peers 100)" \
  --steps "$STEPS" --batch "$BATCH" --dtype bfloat16 --conv "$CONVS" --impl tallysim,vmap_ref --json "$OUT/conv.json"
      $PY benchmarks/gpu_table.py --auto-conv "$OUT/conv.json" > "$OUT/auto_conv.txt" ;;   # printed with the tables
    xla_flags) for f in --xla_gpu_force_conv_nchw=true --xla_gpu_force_conv_nhwc=true; do
        n=${f#--xla_gpu_force_conv_}; n=${n%=true}
        XLA_FLAGS="${XLA_FLAGS:-} $f" part "xla_flags_$n" "${FLAGS_S:-60}" $PY -m tallysim bench --full --model cnn \
  --peers "$(peers 100)" --steps "$STEPS" --batch "$BATCH" --dtype bfloat16 --conv xla --impl tallysim,vmap_ref --json "$OUT/xla_flags_$n.json"
        echo "XLA_FLAGS=$f:"; $PY benchmarks/gpu_table.py "$OUT/xla_flags_$n.json"
      done ;;
    sweep) part sweep "${SWEEP_S:-170}" $PY -m tallysim bench --sweep --sample "${SAMPLE:-6}" --json "$OUT/sweep.json" ;;
    round) part round "${ROUND_S:-110}" $PY -m tallysim bench --round --json "$OUT/round.json" ;;
    table) ;;                                  # only the tables below, from the JSON already in $OUT
    *) echo "== unknown part '$p'; allowed: env table_cnn table_rest torch conv xla_flags sweep round table" ;;
  esac
done
echo "== all parts done in $((SECONDS - start))s"
# The tables: the model table from the table_* parts, then the conv part's lines and AUTO_CONV rows apart
# (its rows are one model's several convs; in the model table they would split every line by conv).
# PARTS=table: from whatever JSON $OUT already holds (a missing file is named under its table).
want() { [[ " $PARTS " == *" $1 "* || " $PARTS " == *" table "* ]]; }
tables=()
for t in table_cnn table_rest; do want $t && tables+=("$OUT/$t.json"); done
{
  if ((${#tables[@]})); then $PY benchmarks/gpu_table.py "${tables[@]}"; fi
  if want conv; then
    echo; echo "convolution formulations (part conv; plain vmap always conv=xla):"
    $PY benchmarks/gpu_table.py "$OUT/conv.json"; $PY benchmarks/gpu_table.py --auto-conv "$OUT/conv.json"
  fi
} | tee "$OUT/table.md"
