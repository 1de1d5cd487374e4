"""The weights manifest, fetch / verify / check and the run's preflight. No network: the
downloader is a fake that writes small files, and every weights root is a tmp folder."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from conftest import CONF, compose_config

from iiie.weights import MissingWeightsError
from iiie.weights.fetch import fetch
from iiie.weights.lock import LOCK_NAME, read_lock, verify
from iiie.weights.manifest import entry_for, load_manifest
from iiie.weights.needs import check, preflight, sweep_needs, sweep_preflight, weight_needs

WEIGHTS_REF = re.compile(r"\$\{paths\.weights\}/([^\s'\"#}]+)")

# Written out by hand (not derived from the manifest): the folders the paper sweep needs.
PAPER_FOLDERS = [
    "Qwen2.5-VL-7B-Instruct", "grounding-dino-base", "sam-vit-huge", "realisticVisionV60B1_v51VAE",
    "brushnet/segmentation_mask_brushnet_ckpt", "brushnet/random_mask_brushnet_ckpt",
    "PowerPaint_v2/PowerPaint_Brushnet", "LCM_Dreamshaper_v7", "instruct-pix2pix", "magicbrush-jul7",
    "stable-diffusion-v1-5", "FLUX.1-Kontext-dev", "Qwen-Image-Edit", "clip-vit-base-patch32",
    "dino-vits16", "clip-vit-large-patch14", "Qwen3-VL-8B-Instruct", "sam3", "FLUX.1-Fill-dev",
]


def test_manifest_covers_every_weights_path_any_config_names():
    entries = load_manifest()
    named = {}
    for f in sorted(CONF.rglob("*.yaml")):
        for m in WEIGHTS_REF.finditer(f.read_text()):
            named.setdefault(m.group(1).rstrip("/"), f.relative_to(CONF))
    assert len(named) >= 20  # the walk found the configs' folders at all
    uncovered = {p: str(f) for p, f in named.items() if entry_for(p, entries) is None or entry_for(p, entries).name != p}
    assert not uncovered, f"folders named in conf/ without an entry in conf/weights.yaml: {uncovered}"
    for e in entries.values():
        assert e.licence and e.size_gb > 0 and e.needed_by, e.name


def test_every_paper_method_has_its_folders_in_the_manifest():
    entries = load_manifest()
    for method in ("iiie", "instructpix2pix", "magicbrush", "ledits_pp", "flux_kontext", "qwen_image_edit", "iiie_2026"):
        assert any(method in e.needed_by.get("methods", []) for e in entries.values()), method


class FakeHub:
    """Stands in for huggingface_hub / HTTP: files whose bytes depend on the revision."""

    def __init__(self, head: str = "a" * 40):
        self.head, self.resolved, self.snapshots, self.urls = head, [], [], []

    def resolve(self, entry, revision):
        self.resolved.append((entry.repo, revision))
        return self.head

    def snapshot(self, entry, revision, local_dir, allow, ignore):
        self.snapshots.append((entry.repo, revision, allow))
        sub = f"{entry.subfolder}/" if entry.subfolder else ""
        for rel in ("config.json", "unet/weights.safetensors"):
            p = Path(local_dir) / sub / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(f"{entry.repo}:{rel}:{revision}".encode())

    def url(self, url, dest):
        self.urls.append(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"pth:" + url.encode())


def test_fetch_writes_the_lock_and_a_second_fetch_takes_the_locked_revision(tmp_path):
    entries = load_manifest()
    chosen = [entries["sam-vit-huge"], entries["PowerPaint_v2/PowerPaint_Brushnet"], entries["bert-base-uncased"]]
    hub = FakeHub()
    assert fetch(chosen, tmp_path, downloader=hub, say=lambda s: None) == []
    lock = read_lock(tmp_path)["entries"]
    assert set(lock) == {"sam-vit-huge", "PowerPaint_v2/PowerPaint_Brushnet", "bert-base-uncased"}
    sam = lock["sam-vit-huge"]
    assert sam["revision"] == "a" * 40 and set(sam["files"]) == {"config.json", "unet/weights.safetensors"}
    data = (tmp_path / "sam-vit-huge" / "config.json").read_bytes()
    assert sam["files"]["config.json"]["sha256"] == hashlib.sha256(data).hexdigest()
    # the subfolder became the entry's folder, and only that subfolder was asked for
    assert (tmp_path / "PowerPaint_v2" / "PowerPaint_Brushnet" / "config.json").is_file()
    assert not (tmp_path / ".partial" / "PowerPaint_v2").exists()
    assert ("JunhaoZhuang/PowerPaint_v2", "a" * 40, ["PowerPaint_Brushnet/*"]) in hub.snapshots
    # a later fetch with the lock, after the hub moved on: up to date, nothing resolved
    moved = FakeHub(head="b" * 40)
    fetch(chosen, tmp_path, downloader=moved, say=lambda s: None)
    assert moved.resolved == [] and moved.snapshots == []
    # a file lost: re-fetched at the locked commit, not the hub's new head
    (tmp_path / "sam-vit-huge" / "config.json").unlink()
    fetch(chosen, tmp_path, downloader=moved, say=lambda s: None)
    assert moved.resolved == [] and moved.snapshots == [("facebook/sam-vit-huge", "a" * 40, ["*.json", "model.safetensors"])]
    assert read_lock(tmp_path)["entries"]["sam-vit-huge"]["revision"] == "a" * 40


def test_fetch_url_entry_checks_the_published_hash_prefix(tmp_path):
    entries = load_manifest()
    lines = []
    hub = FakeHub()
    chosen = [entries["sam_vit_h_4b8939.pth"], entries["dino-vits16"]]
    assert fetch(chosen, tmp_path, downloader=hub, say=lines.append) == ["sam_vit_h_4b8939.pth"]
    assert any("FAILED" in ln and "4b8939" in ln for ln in lines)
    assert hub.urls == [entries["sam_vit_h_4b8939.pth"].url]
    assert not (tmp_path / "sam_vit_h_4b8939.pth").exists()
    assert "dino-vits16" in read_lock(tmp_path)["entries"]  # the next entry still came
    assert "sam_vit_h_4b8939.pth" not in read_lock(tmp_path)["entries"]


def test_manual_entry_is_reported_until_on_disk_then_adopted(tmp_path):
    e = load_manifest()["brushnet/random_mask_brushnet_ckpt"]
    lines = []
    assert fetch([e], tmp_path, downloader=FakeHub(), say=lines.append) == [e.name]
    assert any("Google Drive" in s for s in lines)
    (tmp_path / e.name).mkdir(parents=True)
    (tmp_path / e.name / "config.json").write_text("{}")
    assert fetch([e], tmp_path, downloader=FakeHub(), say=lambda s: None) == []
    assert read_lock(tmp_path)["entries"][e.name]["files"]["config.json"]["size"] == 2


def test_fetch_dry_run_touches_nothing(tmp_path):
    lines = []

    class NoNetwork(FakeHub):
        def resolve(self, *a):
            raise AssertionError("network")

    assert fetch(list(load_manifest().values()), tmp_path, downloader=NoNetwork(), dry_run=True, say=lines.append) == []
    assert "GB in all" in lines[0] and not (tmp_path / LOCK_NAME).exists()


def test_verify_catches_a_flipped_byte_a_missing_and_an_extra_file(tmp_path):
    e = load_manifest()["dino-vits16"]
    fetch([e], tmp_path, downloader=FakeHub(), say=lambda s: None)
    assert verify(tmp_path).clean
    f = tmp_path / "dino-vits16" / "unet" / "weights.safetensors"
    raw = bytearray(f.read_bytes())
    raw[3] ^= 0x01
    f.write_bytes(bytes(raw))  # same size, one bit off
    (tmp_path / "dino-vits16" / "config.json").unlink()
    (tmp_path / "dino-vits16" / "stray.bin").write_bytes(b"x")
    rep = verify(tmp_path)
    assert rep.corrupt == ["dino-vits16/unet/weights.safetensors"]
    assert rep.missing == ["dino-vits16/config.json"]
    assert rep.extra == ["dino-vits16/stray.bin"]
    assert not rep.clean
    lock = json.loads((tmp_path / LOCK_NAME).read_text())
    assert lock["entries"]["dino-vits16"]["revision"] == "a" * 40


def test_check_lists_every_missing_folder_of_the_paper_experiment(tmp_path):
    (tmp_path / "dino-vits16").mkdir()
    (tmp_path / "dino-vits16" / "config.json").write_text("{}")
    lines = []
    rc = check(["experiment=paper", f"paths.weights={tmp_path}"], say=lines.append)
    out = "\n".join(lines)
    assert rc == 1
    missing = {ln.split()[3] for ln in lines if ln.lstrip().startswith("MISSING")}
    assert missing == set(PAPER_FOLDERS) - {"dino-vits16"}
    assert re.search(r"ok .*dino-vits16", out)
    assert f"{len(PAPER_FOLDERS) - 1} of {len(PAPER_FOLDERS)} missing (2 of them the VLM server's)" in out
    # the two VLM folders explain why the run's preflight counts two fewer
    assert f"{len(PAPER_FOLDERS)} weights folder(s) under {tmp_path}/: {len(PAPER_FOLDERS) - 2} read by the run" in lines[0]
    served = [ln for ln in lines if ln.endswith("(read by the VLM server (make serve-vlm), not by the run)")]
    assert sorted(ln.split()[3] for ln in served) == ["Qwen2.5-VL-7B-Instruct", "Qwen3-VL-8B-Instruct"]
    assert "python -m iiie.weights fetch experiment=paper" in out


def test_check_of_the_cpu_default_needs_nothing(tmp_path):
    assert check([f"paths.weights={tmp_path}"], say=lambda s: None) == 0


def test_preflight_lists_every_missing_folder_in_one_message(tmp_path):
    cfg = compose_config([f"paths.weights={tmp_path}", "planner=vlm", "masker=grounded_sam",
                          "editor@editor.local=brushnet", "editor@editor.remove=powerpaint", "metrics=magicbrush"])
    with pytest.raises(MissingWeightsError) as err:
        preflight(cfg)
    msg = str(err.value)
    for folder in ("grounding-dino-base", "sam-vit-huge", "realisticVisionV60B1_v51VAE",
                   "brushnet/segmentation_mask_brushnet_ckpt", "PowerPaint_v2/PowerPaint_Brushnet",
                   "clip-vit-base-patch32", "dino-vits16"):
        assert str(tmp_path / folder) in msg, folder
    assert msg.startswith("7 weights folder(s) missing")
    # read by the VLM server, which may run elsewhere: not in the list, named as not checked
    listed, note = msg.split("\nnot checked here: ")
    assert "Qwen2.5-VL" not in listed
    assert note.startswith("Qwen2.5-VL-7B-Instruct: read by the VLM server (make serve-vlm), not by the run")
    assert "python -m iiie.weights fetch" in msg
    # in-process VLM: now the run itself reads the model folder
    offline = compose_config([f"paths.weights={tmp_path}", "planner=vlm_offline"])
    with pytest.raises(MissingWeightsError, match="Qwen2.5-VL-7B-Instruct"):
        preflight(offline)


def test_preflight_passes_for_the_cpu_default_and_tiny_weights(tmp_path):
    preflight(compose_config([f"paths.weights={tmp_path}"]))
    tiny = compose_config([f"paths.weights={tmp_path}", "experiment=tiny"])
    from iiie.tiny_weights import referenced

    assert referenced(tiny) and weight_needs(tiny) == {}  # tiny weights: written under paths.cache


def test_sweep_preflight_covers_every_job(tmp_path):
    head = compose_config_with_hydra(["experiment=paper", f"paths.weights={tmp_path}"])
    missing = {n.relpath: n for n in sweep_preflight(head)}
    assert {"grounding-dino-base", "clip-vit-large-patch14"} <= set(missing)
    assert "method=iiie" in missing["grounding-dino-base"].jobs
    missing_too, served = sweep_needs(head)
    assert {n.relpath for n in missing_too} == set(missing)
    assert {n.relpath for n in served} == {"Qwen2.5-VL-7B-Instruct", "Qwen3-VL-8B-Instruct"}
    assert not {n.relpath for n in served} & set(missing)


def compose_config_with_hydra(overrides):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def test_manifest_needed_by_agrees_with_the_composed_method(tmp_path):
    """The manifest's needed_by (documentation) says what composing method=iiie finds."""
    entries = load_manifest()
    cfg = compose_config([f"paths.weights={tmp_path}", "method=iiie"])
    found = set(weight_needs(cfg, entries))
    tagged = {e.name for e in entries.values() if "iiie" in e.needed_by.get("methods", [])}
    assert found == tagged and "grounding-dino-base" in found


def test_cli_fetch_dry_run_prints_sources_and_total(tmp_path, capsys, monkeypatch):
    from iiie.weights.__main__ import main

    monkeypatch.setenv("IIIE_WEIGHTS", str(tmp_path))
    assert main(["fetch", "experiment=paper", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "GB in all" in out and "hf:Qwen/Qwen2.5-VL-7B-Instruct" in out and "dry run" in out
    assert main(["check", "experiment=paper", f"paths.weights={tmp_path}"]) == 1
    assert main(["verify", "--root", str(tmp_path)]) == 1  # no lock yet


def test_preflight_counts_an_interrupted_fetch_as_missing(tmp_path):
    fetch([load_manifest()["sam-vit-huge"]], tmp_path, downloader=FakeHub(), say=lambda s: None)
    cfg = compose_config([f"paths.weights={tmp_path}", "masker=vlm_box"])
    preflight(cfg)  # complete per the lock
    (tmp_path / "sam-vit-huge" / "unet" / "weights.safetensors").write_bytes(b"cut")
    with pytest.raises(MissingWeightsError, match="sam-vit-huge"):
        preflight(cfg)
