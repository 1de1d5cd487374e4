"""results/<experiment>/run.log: one line per stage with its counts; progress bars only on
a terminal unless forced."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from iiie.logs import progress_enabled
from iiie.run import execute

REPO = Path(__file__).resolve().parents[1]
STAGE = re.compile(r"INFO iiie: stage (\w+): (\d+) computed, (\d+) cached, (\d+) failed.*, [\d.]+ s$")


def _stage_lines(log: Path) -> dict[str, tuple[int, int, int]]:
    found: dict[str, tuple[int, int, int]] = {}
    for line in log.read_text().splitlines():
        if m := STAGE.search(line):
            assert m.group(1) not in found, f"two lines for stage {m.group(1)}"
            found[m.group(1)] = tuple(int(g) for g in m.groups()[1:])
    return found


def test_run_log_has_one_line_per_stage_with_the_manifest_counts(make_cfg, tmp_path):
    cfg = make_cfg("data.n=4", "data.odd_inputs=true")  # the odd inputs fail at the plan stage
    out = tmp_path / "results" / "smoke"
    execute(cfg)
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    lines = _stage_lines(out / "run.log")
    assert list(lines) == ["plan", "mask", "edit", "score"]  # in the order they ran
    assert lines == {s: (c["computed"], c["cached"], c["errors"]) for s, c in stages.items()}
    assert lines["plan"][2] > 0  # failures are counted, not hidden
    execute(cfg)  # the log is the last run's, like the tables: everything cached now
    again = _stage_lines(out / "run.log")
    assert all(computed == 0 and cached > 0 for computed, cached, _ in again.values()), again


def test_a_stopped_run_writes_its_error_to_the_log(make_cfg, tmp_path):
    from iiie.weights import MissingWeightsError

    cfg = make_cfg("data.n=2", "metrics=magicbrush", f"paths.weights={tmp_path / 'none'}")
    with pytest.raises(MissingWeightsError):
        execute(cfg)
    assert "ERROR iiie: run stopped: MissingWeightsError" in (tmp_path / "results" / "smoke" / "run.log").read_text()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_setting():
    assert progress_enabled("auto", _Tty()) and not progress_enabled("auto", io.StringIO())
    assert progress_enabled(None, _Tty())
    assert progress_enabled(True, io.StringIO()) and not progress_enabled(False, _Tty())
    with pytest.raises(ValueError, match="true, false or auto"):
        progress_enabled("sometimes")


def _cli(tmp_path: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "iiie.run", "experiment=smoke", "data.n=3", "data.odd_inputs=false",
            f"paths.runs={tmp_path / name / 'runs'}", f"paths.results={tmp_path / name / 'results'}",
            f"hydra.run.dir={tmp_path / name / 'out'}", *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_cli_redirected_has_no_bars_unless_forced(tmp_path):
    plain = _cli(tmp_path, "plain")  # stderr is a pipe: runtime.progress=auto hides the bars
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert "it/s" not in plain.stderr and "%|" not in plain.stderr
    assert "INFO iiie: stage edit:" in plain.stderr  # Hydra's job logging: the console has the lines
    log = (tmp_path / "plain" / "results" / "smoke" / "run.log").read_text()
    assert "%|" not in log and set(_stage_lines(tmp_path / "plain" / "results" / "smoke" / "run.log")) == {
        "plan", "mask", "edit", "score"}
    forced = _cli(tmp_path, "forced", "runtime.progress=true")
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert "%|" in forced.stderr
