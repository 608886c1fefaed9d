#!/usr/bin/env bash
# FF on MNIST, 4 x 2000, 60 epochs, on one CUDA GPU (sized for < 5 minutes on an H100).
# Records epochs/s (epochs / train_seconds) and test error in bench/results/accuracy-gpu-mnist-4x2000-e60.json,
# beside the backprop baseline on the same architecture and budget. Needs a CUDA build of torch in .venv
# (`make setup TORCH_SPEC=torch`) and MNIST in ../shared/data/mnist or --data-dir. Extra arguments go to
# `ff-mcp bench accuracy` (e.g. --cuda-graph --tag gpu-mnist-4x2000-e60-graph).
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: this benchmark needs a GPU')"
exec python -m ff_mcp bench accuracy --record --dataset mnist --hidden 2000,2000,2000,2000 --epochs 60 --batch-size 100 \
  --optimizer adam --lr 1e-3 --predict-method readout --device cuda --amp bf16 --eval-every 10 --quiet \
  --tag gpu-mnist-4x2000-e60 "$@"
