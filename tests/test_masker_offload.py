"""``masker.offload`` (= ``runtime.offload``) for the maskers with torch models, on tiny
random weights: a clear error on CPU, the right accelerate call, and the same masks.

Real runs refuse offload on a CPU device, so the mask-equality tests bypass that guard and
run accelerate's hooks with the CPU as execution device: what is tested is that every
model loads in host memory, is handed to accelerate and then computes through its hooks
(for ``sequential``, with its blocks' weights really on the meta device between calls).
The CUDA test at the end runs the same thing on a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from iiie import offload, placement
from iiie import weights as W
from iiie.maskers import tiny
from iiie.pipeline.runner import build as build_node
from iiie.tiny_weights import sam2 as tiny_sam2
from iiie.tiny_weights import sam3 as tiny_sam3
from iiie.types import Category, EditRequest, Plan
from tests.conftest import compose_config

pytestmark = pytest.mark.timeout(300)

VLM_RAW = {"ground_objects": True}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """``paths.cache`` with the tiny folders where conf/masker/tiny/*.yaml look for them."""
    base = tmp_path_factory.mktemp("tiny_offload")
    tiny.ensure(base / "tiny")
    tiny_sam2.ensure(base / "tiny")
    tiny_sam3.ensure(base / "tiny")
    return base


#: masker name -> config overrides on top of conf/masker/tiny/<name> (box ladders that keep
#: a box from the random detectors, so SAM runs too).
MASKERS = {
    "grounded_sam": ["masker.box_thresholds=[0.0]", "masker.keep=best"],
    "grounded_sam_original": ["masker.box_thresholds=[0.0]", "masker.keep=best", "masker.impl=original",
                              "masker.dino=${paths.cache}/tiny/grounded_sam/groundingdino_swint_ogc.pth",
                              "masker.sam=${paths.cache}/tiny/grounded_sam/sam_vit_h_4b8939.pth",
                              "masker.bert=${paths.cache}/tiny/grounded_sam/bert-base-uncased"],
    "grounded_sam2": ["masker.box_thresholds=[0.0]", "masker.keep=best"],
    "vlm_box": [],
    "sam3": [],
}


def build(root, name, *over, runtime="cpu"):
    config = "grounded_sam" if name == "grounded_sam_original" else name
    cfg = compose_config([f"masker=tiny/{config}", f"runtime={runtime}", f"paths.cache={root}",
                          *MASKERS[name], *over])
    return build_node("masker", cfg.masker)


def batch(n=3):
    rng = np.random.default_rng(0)
    reqs = [EditRequest(f"s{i}", Image.fromarray(rng.integers(0, 255, (56 + 8 * i, 72, 3), dtype=np.uint8)), "edit")
            for i in range(n)]
    plans = [Plan(Category.LOCAL, "cat", raw={**VLM_RAW, "object_box": [4, 6, 50, 40]}),
             Plan(Category.BACKGROUND, "dog", raw={**VLM_RAW, "object_box": [[0, 0, 30, 30], [20, 10, 70, 50]]}),
             Plan(Category.REMOVE, "cup", raw={**VLM_RAW, "object_box": [10, 10, 60, 60]})][:n]
    return reqs, plans


def models(masker) -> list[torch.nn.Module]:
    """The masker's loaded torch models (detector / SAM / SAM 3)."""
    if masker.name == "sam3":
        return [masker.placement().module]
    out = [masker.segmenter().placement.module]
    if masker.name == "grounded_sam":
        out.insert(0, masker.detector().placement.module)
    return out


@pytest.fixture
def fresh():
    W.clear_loaded()
    yield
    W.clear_loaded()


def test_offload_on_cpu_is_a_clear_error_naming_the_key(root):
    for name in ("grounded_sam", "vlm_box", "sam3"):
        with pytest.raises(offload.OffloadError, match=r"masker\.offload=model needs a GPU"):
            build(root, name, "runtime.offload=model")
    with pytest.raises(ValueError, match=r"masker\.offload='everything': choose one of none, model, sequential"):
        build(root, "grounded_sam", "runtime.offload=everything")
    assert build(root, "vlm_box").offload == "none"  # the default follows runtime.offload
    assert build(root, "sam3", "masker.offload=none", "runtime.offload=model").offload == "none"


def test_the_helper_hands_module_and_device_to_accelerate(monkeypatch):
    """With accelerate's functions patched, no GPU is needed to check what they receive."""
    import accelerate

    calls = []
    monkeypatch.setattr(accelerate, "cpu_offload_with_hook",
                        lambda m, execution_device: (calls.append(("hook", m, execution_device)), (m, "hook"))[1])
    monkeypatch.setattr(accelerate, "cpu_offload",
                        lambda m, execution_device, preload_module_classes: calls.append(
                            ("seq", m, execution_device, preload_module_classes)))
    monkeypatch.setattr(offload, "_move_resident", lambda m, d: calls.append(("rest", m, d)))

    class Layer(torch.nn.Linear):
        pass

    net = torch.nn.Sequential(torch.nn.Embedding(4, 3), torch.nn.Sequential(Layer(3, 3), Layer(3, 3)), torch.nn.Linear(3, 1))
    placed = offload.offload_module(net, "model", "cuda:1")
    assert calls == [("hook", net, torch.device("cuda:1"))] and placed.hook == "hook"
    calls.clear()
    offload.offload_module(net, "sequential", torch.device("cuda:1"), blocks=["Layer"])
    cuda1 = torch.device("cuda:1")
    assert calls == [("seq", net[1][0], cuda1, ["Layer"]), ("seq", net[1][1], cuda1, ["Layer"]), ("rest", net, cuda1)]
    with pytest.raises(offload.OffloadError, match="sequential: Sequential has no blocks"):
        offload.offload_module(net, "sequential", "cuda:1", blocks=["Nothing"])


def test_sequential_keeps_the_rest_on_the_device_with_tied_weights_tied():
    """Outside the blocks every tensor goes to the execution device in place, so a head
    tied to the embedding is still the embedding (``meta`` stands in for the GPU)."""
    embed, head = torch.nn.Embedding(5, 3), torch.nn.Linear(3, 5, bias=False)
    head.weight = embed.weight
    net = torch.nn.Sequential(embed, head)
    net.register_buffer("scale", torch.ones(1))
    offload._move_resident(net, torch.device("meta"))
    assert head.weight is embed.weight and embed.weight.device.type == "meta" and net.scale.device.type == "meta"


def test_model_offload_moves_the_module_for_the_batch_only():
    """``running()`` puts the whole module on the execution device and the hook's
    ``offload()`` takes it back (both the CPU here: the calls are what is checked)."""
    net = torch.nn.Linear(3, 3)
    placed = offload.offload_module(net, "model", "cpu")
    moves = []
    real_to = net.to
    net.to = lambda *a, **k: (moves.append(str(a[0])), real_to(*a, **k))[1]
    with placed.running():
        pass
    assert moves == ["cpu", "cpu"]  # on before the batch, back (the hook's init_hook) after
    assert hasattr(net, "_hf_hook")


@pytest.mark.parametrize("mode", ["model", "sequential"])
@pytest.mark.parametrize("name", list(MASKERS))
def test_offloaded_models_give_the_same_masks(root, fresh, name, mode):
    reqs, plans = batch()
    plain = build(root, name).mask_batch(reqs, plans)
    W.clear_loaded()
    masker = build(root, name)
    masker.offload = mode  # past the CPU guard: accelerate's hooks with the CPU as execution device
    hooked = masker.mask_batch(reqs, plans)
    for a, b in zip(plain, hooked, strict=True):
        assert np.array_equal(a.mask, b.mask) and a.boxes == b.boxes and a.source == b.source
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)
    assert any(r.boxes for r in hooked)  # a model produced something, not only the fallbacks
    for module in models(masker):
        if mode == "model":
            assert hasattr(module, "_hf_hook")
        else:  # the blocks' weights wait on the meta device
            assert offload.offloaded_fraction(module) > 0.2, type(module).__name__


def test_offload_is_left_out_of_the_mask_cache_key(make_cfg):
    from iiie.pipeline.runner import Runner

    keys = [Runner(make_cfg("masker=grounded_sam", f"runtime.offload={m}", "data.n=2")).keys["mask"]
            for m in ("none", "model")]
    assert keys[0] == keys[1]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (masker offload hooks)")
@pytest.mark.parametrize("mode", ["model", "sequential"])
def test_grounded_sam_offload_on_cuda_gives_the_same_masks(root, fresh, mode):
    reqs, plans = batch()
    gpu = ["runtime.device=cuda", "runtime.dtype=float32"]
    plain = build(root, "grounded_sam", *gpu, runtime="gpu").mask_batch(reqs, plans)
    W.clear_loaded()
    masker = build(root, "grounded_sam", *gpu, f"runtime.offload={mode}", runtime="gpu")
    assert masker.offload == mode
    hooked = masker.mask_batch(reqs, plans)
    for a, b in zip(plain, hooked, strict=True):
        assert np.array_equal(a.mask, b.mask) and a.boxes == b.boxes
    if mode == "model":  # after the batch both models are back in host memory
        assert all(next(m.parameters()).device.type == "cpu" for m in models(masker))
    placement.free_memory()
