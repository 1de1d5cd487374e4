"""Shared fixtures: composing the real Hydra tree, and paths into the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
GOLDEN = REPO.parent / "shared" / "golden"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def require_golden(folder: Path, marker: str = "run_meta.json") -> None:
    """Skip a parity test when ``../shared/golden/<kind>`` is absent, locally and loudly;
    in CI (env ``CI`` set, as ``.ci/run`` does) fail instead: parity must never pass by
    not running."""
    if (folder / marker).exists():
        return
    message = f"golden folder {folder} is absent (it lives in ../shared/golden)"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI requires it", pytrace=False)
    pytest.skip(message)


def compose_config(overrides: list[str], config_name: str = "config") -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with overrides, exactly as the CLIs do."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides, return_hydra_config=False)


@pytest.fixture
def make_cfg(tmp_path):
    """Compose the main config with run/results folders inside ``tmp_path``."""

    def _make(*overrides: str, config_name: str = "config") -> DictConfig:
        base = [
            f"paths.runs={tmp_path / 'runs'}",
            f"paths.results={tmp_path / 'results'}",
            f"paths.cache={tmp_path / 'cache'}",
            "runtime.progress=false",
        ]
        return compose_config(base + list(overrides), config_name)

    return _make


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_lcm(tmp_path_factory) -> Path:
    """A tiny LCM SD1.5 folder in the official LCM_Dreamshaper_v7 layout (InfEdit's model)."""
    from iiie.tiny_weights.infedit import ensure

    return ensure(tmp_path_factory.mktemp("tiny_infedit"))
