"""``benchmarks/gpu_bench.py --smoke``: the GPU benchmark's code paths on CPU at tiny size.

Runs the script as CI does (its own process) and checks that the JSON has every section
with positive numbers, so a broken section cannot hide behind a GPU that CI lacks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_gpu_bench_smoke_writes_every_section(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_bench.py"), "--smoke", "--out", str(out),
         "--weights", str(tmp_path / "weights")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "gpu_bench.json").read_text())
    assert res["profile"] == "smoke" and res["environment"]["device"] == "cpu"

    a = res["a_brushnet_vs_diffusers"]
    assert a["ours_edit"]["median_s"] > 0 and a["diffusers_inpaint"]["median_s"] > 0
    assert a["ratio_ours_over_diffusers"] > 0
    # The branch is a partial UNet copy: it adds some, but less than a whole UNet of work.
    assert 0 < a["branch_flop_fraction"] < 1
    assert a["unet_forward"]["flops"] > a["branch_forward"]["flops"] > 0
    assert a["parameters"]["brushnet"] > 0
    meta = a["flops_per_step_meta"]  # the same count on the meta device: equal to the real one
    assert meta["unet_flops"] == a["unet_forward"]["flops"] and meta["brushnet"]["flops"] == a["branch_forward"]["flops"]
    assert meta["brushnet_ca"]["fraction"] > meta["brushnet"]["fraction"] > 0

    b = res["b_throughput"]
    assert [r["batch"] for r in b["rows"]] == [1, 2]
    for r in b["rows"]:
        assert r["median_s"] > 0 and r["edits_per_s"] > 0
        assert r["edits_per_hour"] == pytest.approx(3600 * r["batch"] / r["median_s"], rel=1e-3)

    c = res["c_peak_memory"]
    assert {r["editor"].split(" ")[0] for r in c["rows"]} == {"brushnet", "powerpaint", "infedit"}
    assert all(r["peak_bytes"] > 0 and r["first_call_s_with_load"] > 0 for r in c["rows"])

    d = res["d_tiny_pipeline"]
    assert d["samples"] == 5 and d["wall_s"] > d["overhead_s"] > 0
    assert d["edit_stage_s"] >= d["editor_call_s"] > 0

    md = (out / "gpu_bench.md").read_text()
    for heading in ("## (a)", "## (b)", "## (c)", "## (d)"):
        assert heading in md
