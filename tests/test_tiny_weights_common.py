"""``ensure_folder``: built once, rebuilt when the writer's version changes."""

from __future__ import annotations

from iiie.tiny_weights.common import DONE, ensure_folder


def test_folder_is_built_once_and_rebuilt_for_a_new_writer_version(tmp_path):
    calls = []

    def writer(version):
        def write(folder):
            calls.append(version)
            (folder / "weights.txt").write_text(f"v{version}")
        return write

    first = ensure_folder(tmp_path, "m", writer(1), version=1)
    assert ensure_folder(tmp_path, "m", writer(1), version=1) == first and calls == [1]
    ensure_folder(tmp_path, "m", writer(2), version=2)  # a changed writer: the old folder is stale
    assert calls == [1, 2] and (first / "weights.txt").read_text() == "v2"
    assert "version 2" in (first / DONE).read_text()
    ensure_folder(tmp_path, "m", writer(3))  # no version asked: any complete folder will do
    assert calls == [1, 2]


def test_every_tiny_folder_named_in_conf_has_its_writer():
    import importlib
    import re
    from pathlib import Path

    from iiie.tiny_weights import WRITERS

    conf = Path(__file__).resolve().parents[1] / "conf"
    named = {m.group(1) for f in conf.rglob("*.yaml") for m in re.finditer(r"\$\{paths\.cache\}/tiny/([A-Za-z0-9_.-]*[A-Za-z0-9_-])", f.read_text())}
    assert len(named) >= 12 and named <= set(WRITERS), sorted(named - set(WRITERS))
    for module, function in (w.split(":") for w in WRITERS.values()):
        assert callable(getattr(importlib.import_module(module), function))


def test_a_run_names_its_tiny_folders_and_only_those(make_cfg):
    from iiie.tiny_weights import referenced

    assert referenced(make_cfg("method=tiny/flux_kontext")) == ["FLUX.1-Kontext-dev"]
    iiie = referenced(make_cfg("method=tiny/iiie"))
    assert set(iiie) == {"qwen2_5_vl", "grounded_sam", "brushnet", "PowerPaint_v2", "LCM_Dreamshaper_v7"}
    assert referenced(make_cfg()) == []  # the CPU default reads no model
