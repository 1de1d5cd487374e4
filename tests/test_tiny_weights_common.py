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
