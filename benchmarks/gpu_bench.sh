#!/usr/bin/env bash
# The prepared GPU benchmark on a fresh machine where only torch (with CUDA) is installed.
#
#   benchmarks/gpu_bench.sh --out results/gpu_bench                  # deps from PyPI
#   benchmarks/gpu_bench.sh --wheels /path/wheels --out results/gpu_bench   # offline
#   benchmarks/gpu_bench.sh --skip-install --smoke --out /tmp/smoke  # deps already there
#
# 1. Installs the project's dependencies into the Python that has torch (PYTHON, default
#    python3), pinned to that torch (a constraint on its exact version, so no dependency
#    can replace the preinstalled CUDA build): `pip install --no-index --find-links DIR`
#    when --wheels DIR is given (a folder made with `pip wheel -w DIR .` on a machine with
#    network, see benchmarks/README.md), else from PyPI.
# 2. Runs benchmarks/gpu_bench.py with every other argument (--out is required), from this
#    checkout, under a time limit (BENCH_TIMEOUT seconds, default 900).
# The install log goes to <out>/install.log; the results to <out>/gpu_bench.{json,md}.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WHEELS=""
INSTALL=1
OUT=""
ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --wheels) WHEELS="${2:?--wheels needs a folder}"; shift 2 ;;
    --skip-install) INSTALL=0; shift ;;
    --out) OUT="${2:?--out needs a folder}"; ARGS+=("$1" "$2"); shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if [[ -z "$OUT" ]]; then
  echo "gpu_bench.sh: --out RESULTS_FOLDER is required" >&2
  exit 2
fi
mkdir -p "$OUT"

if ! TORCH_VERSION="$("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null)"; then
  echo "gpu_bench.sh: $PYTHON cannot import torch; install torch with CUDA first (or set PYTHON=)" >&2
  exit 2
fi
echo "[gpu_bench.sh] $("$PYTHON" --version), torch $TORCH_VERSION, repo $REPO"

if [[ "$INSTALL" == 1 ]]; then
  CONSTRAINTS="$OUT/constraints.txt"
  # The installed torch (and torchvision, if present) is the one to keep.
  "$PYTHON" - "$CONSTRAINTS" <<'EOF'
import importlib.metadata as md
import sys

lines = []
for name in ("torch", "torchvision"):
    try:
        lines.append(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        pass
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
EOF
  t0=$SECONDS
  if [[ -n "$WHEELS" ]]; then
    if [[ ! -d "$WHEELS" ]]; then
      echo "gpu_bench.sh: --wheels folder $WHEELS does not exist" >&2
      exit 2
    fi
    echo "[gpu_bench.sh] installing offline from $WHEELS (log: $OUT/install.log)"
    "$PYTHON" -m pip install --no-index --find-links "$WHEELS" -c "$CONSTRAINTS" iiie >"$OUT/install.log" 2>&1 \
      || { tail -20 "$OUT/install.log" >&2; exit 1; }
  else
    echo "[gpu_bench.sh] installing from PyPI (log: $OUT/install.log)"
    "$PYTHON" -m pip install -c "$CONSTRAINTS" "$REPO" >"$OUT/install.log" 2>&1 \
      || { tail -20 "$OUT/install.log" >&2; exit 1; }
  fi
  echo "[gpu_bench.sh] install took $((SECONDS - t0)) s"
  if [[ "$("$PYTHON" -c 'import torch; print(torch.__version__)')" != "$TORCH_VERSION" ]]; then
    echo "gpu_bench.sh: the install changed torch ($TORCH_VERSION); see $OUT/install.log" >&2
    exit 1
  fi
fi

cd "$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
t0=$SECONDS
timeout "${BENCH_TIMEOUT:-900}" "$PYTHON" benchmarks/gpu_bench.py "${ARGS[@]}"
echo "[gpu_bench.sh] benchmark took $((SECONDS - t0)) s; results in $OUT/gpu_bench.md"
