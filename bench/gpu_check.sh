#!/usr/bin/env bash
# The engine's checks and benchmarks on a CUDA GPU, in parts sized for a short lease:
#   pytest       tests/engine/test_cuda.py: fused step vs autograd, training, stream pipeline, bf16,
#                checkpoints to CPU, the CUDA-graph step against the eager one
#   mnist        bench/gpu_mnist.sh: MNIST 4x2000, 60 epochs, bf16, eager, beside backprop
#   mnist-graph  the same with --cuda-graph (no backprop rerun)
#   throughput   train-step throughput against torch.mm on its shapes (3x1000, batch 100, SGD):
#                fp32 eager, fp32 graph, bf16 graph
#   memory       memory against depth with torch.cuda.max_memory_allocated
# Each part's log, a summary and a tarball of the new bench/results files go to $OUT.
#   DATA_DIR=dir-holding-mnist bash bench/gpu_check.sh pytest mnist mnist-graph throughput memory
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/ff-gpu-check}
DATA_DIR=${DATA_DIR:-../shared/data}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! command -v python >/dev/null; then  # images that only name python3
  mkdir -p /tmp/ff-bin && ln -sf "$(command -v python3)" /tmp/ff-bin/python && export PATH="/tmp/ff-bin:$PATH"
fi
touch "$OUT/.start"
run() {  # run NAME SECONDS CMD...: log to $OUT/NAME.log, keep going on failure
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  echo "$name: exit $? in $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
  find bench/results -newer "$OUT/.start" -type f | tar czf "$OUT/results.tgz" -T -  # what is done so far
}
throughput() {  # throughput TAG-SUFFIX ARGS...
  local name=$1; shift
  run "throughput-$name" 90 python -m ff_mcp bench throughput --record --dataset mnist --data-dir "$DATA_DIR" \
    --hidden 1000,1000,1000 --batch-size 100 --optimizer sgd --lr 1e-3 --device cuda \
    --tag "gpu-mnist-3x1000-b100-sgd-$name" "$@"
}
{ nvidia-smi -L; python -c "import torch; print('torch', torch.__version__, torch.version.cuda, torch.cuda.get_device_name())"; } \
  >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(pytest mnist mnist-graph throughput memory)
for part in "${parts[@]}"; do
  case $part in
    pytest) run pytest 240 python -m pytest -q -p no:cacheprovider tests/engine/test_cuda.py ;;
    mnist) run mnist 330 bash bench/gpu_mnist.sh --data-dir "$DATA_DIR" ;;
    mnist-graph) run mnist-graph 240 bash bench/gpu_mnist.sh --data-dir "$DATA_DIR" --cuda-graph --no-baseline \
                   --tag gpu-mnist-4x2000-e60-graph ;;
    throughput) throughput fp32 --amp none; throughput fp32-graph --amp none --cuda-graph
                throughput bf16-graph --amp bf16 --cuda-graph ;;
    memory) run memory 200 python bench/memory_depth.py --depths 2,4,8,16,32 --steps 2 --device cuda ;;
    *) echo "unknown part $part (pytest, mnist, mnist-graph, throughput, memory)" | tee -a "$OUT/summary.txt" ;;
  esac
done
cat "$OUT/summary.txt"
