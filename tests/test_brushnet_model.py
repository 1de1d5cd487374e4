"""BrushNetModel + UNet with add-samples: checkpoint compatibility, parity with the
reference (golden folders), and size-independence on configs unlike the golden one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import require_golden
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file

from iiie.models.brushnet import BrushNetModel, BrushNetUNet2DConditionModel
from iiie.parity import brushnet as parity

# The shared golden folder, relative to the repo: ../shared/golden
GOLDEN = Path(__file__).resolve().parents[1].parent / "shared" / "golden"
BRUSHNET_GOLDEN = GOLDEN / "brushnet"
POWERPAINT_GOLDEN = GOLDEN / "powerpaint"


def _need(folder):
    require_golden(folder, marker="")


# ---------------------------------------------------------------- golden checkpoints
@pytest.mark.parametrize(
    "golden, branch, keys",
    [
        (BRUSHNET_GOLDEN, "tiny_brushnet", "keys.txt"),
        (POWERPAINT_GOLDEN, "PowerPaint_Brushnet", "keys_brushnet_ca.txt"),
    ],
    ids=["brushnet", "powerpaint-ca"],
)
def test_official_checkpoint_loads_strictly_with_its_config(golden, branch, keys):
    _need(golden)
    folder = golden / branch
    model = BrushNetModel.from_pretrained(folder)
    expected = (golden / keys).read_text().split()
    assert list(model.state_dict()) == expected  # same names, same order, nothing extra
    result = model.load_state_dict(load_file(str(folder / "diffusion_pytorch_model.safetensors")), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    ref = json.loads((folder / "config.json").read_text())
    ours = {k: v for k, v in model.config.items() if not k.startswith("_")}
    assert set(ours) == {k for k in ref if not k.startswith("_")}
    for k, v in ours.items():
        assert (list(v) if isinstance(v, tuple) else v) == ref[k], k


def test_parity_brushnet_golden_modules_and_pipeline():
    """A1 + A2: every recorded tensor of the reference within tolerance."""
    _need(BRUSHNET_GOLDEN)
    report = parity.run(BRUSHNET_GOLDEN)
    report.print()
    names = {c.name for c in report.checks}
    assert any(n.endswith("unet_noise_pred") for n in names)
    assert any(n.endswith("latents_after") for n in names) and any(n.endswith("output_np") for n in names)
    assert report.ok


def test_parity_cross_attention_branch_b1():
    """B1: PowerPaint's BrushNet-CA (same class, cross-attention blocks) and its UNet."""
    _need(POWERPAINT_GOLDEN)
    report = parity.run_modules(POWERPAINT_GOLDEN)  # the full B tool is `parity powerpaint`
    report.print()
    assert any("up_block_res_samples" in c.name for c in report.checks)
    assert report.ok


def test_parity_cli_exit_codes(tmp_path):
    assert parity.main([str(tmp_path / "nope")]) == 2


# ---------------------------------------------------------------- other tiny configs
def _unet(cross_attention_blocks=(True, True, False), layers=2, channels=(16, 24, 32)) -> UNet2DConditionModel:
    torch.manual_seed(0)
    down = tuple("CrossAttnDownBlock2D" if c else "DownBlock2D" for c in cross_attention_blocks)
    up = tuple("CrossAttnUpBlock2D" if c else "UpBlock2D" for c in reversed(cross_attention_blocks))
    return BrushNetUNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=layers,
        block_out_channels=channels, norm_num_groups=8, cross_attention_dim=16, attention_head_dim=2,
        down_block_types=down, up_block_types=up,
    ).eval()


def _randomise(model: BrushNetModel, seed: int = 1) -> BrushNetModel:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


def _inputs(h=10, w=14, batch=2, seed=3):
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, 4, h, w, generator=g)
    cond = torch.cat([torch.randn(batch, 4, h, w, generator=g), (torch.rand(batch, 1, h, w, generator=g) > 0.5).float()], 1)
    text = torch.randn(batch, 7, 16, generator=g)
    return sample, torch.tensor(500), text, cond


@pytest.mark.parametrize("cross_attention", [False, True], ids=["plain", "ca"])
def test_counts_roundtrip_and_nonsquare_shapes(tmp_path, cross_attention):
    """layers_per_block=2, 3 levels, other widths, odd non-square latent (10x14)."""
    unet = _unet()
    branch = _randomise(BrushNetModel.from_unet(unet, use_cross_attention=cross_attention)).eval()
    n_down, n_up = unet.expected_add_samples()
    assert n_down == 1 + 3 * 2 + 2 and n_up == 3 * 3 + 2
    assert branch.num_down_samples == n_down and branch.num_up_samples == n_up

    branch.save_pretrained(tmp_path / "bn")
    loaded = BrushNetModel.from_pretrained(tmp_path / "bn").eval()
    assert list(loaded.state_dict()) == list(branch.state_dict())
    for (k, a), b in zip(branch.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k

    sample, t, text, cond = _inputs()
    with torch.no_grad():
        down, mid, up = loaded(sample, t, encoder_hidden_states=text, brushnet_cond=cond, return_dict=False)
        assert [d.shape[-2:] for d in down[:3]] == [torch.Size([10, 14])] * 3
        assert down[-1].shape[-2:] == (3, 4) and mid.shape[-2:] == (3, 4)
        assert up[-1].shape == (2, 16, 10, 14)
        noise = unet(sample, t, text, down_block_add_samples=down, mid_block_add_sample=mid,
                     up_block_add_samples=up).sample
        plain = unet(sample, t, text).sample
    assert noise.shape == sample.shape
    assert (noise - plain).abs().max() > 1e-3  # the branch matters
    if cross_attention:  # only the CA branch reads the text
        with torch.no_grad():
            other = loaded(sample, t, encoder_hidden_states=text.flip(0), brushnet_cond=cond, return_dict=False)
        assert (other[1] - mid).abs().max() > 1e-4
    assert any(".attentions." in k for k in branch.state_dict()) == cross_attention


def test_untrained_branch_leaves_unet_unchanged_and_zero_adds_are_exact():
    """from_unet zero convs -> zero add-samples -> our add-sample path equals diffusers' forward
    (also on a latent size that needs forwarded upsample sizes)."""
    unet = _unet()
    branch = BrushNetModel.from_unet(unet).eval()
    sample, t, text, cond = _inputs(h=10, w=14)
    with torch.no_grad():
        down, mid, up = branch(sample, t, encoder_hidden_states=text, brushnet_cond=cond, return_dict=False)
        assert all(torch.count_nonzero(x) == 0 for x in (*down, mid, *up))
        ours = unet(sample, t, text, down_block_add_samples=down, mid_block_add_sample=mid,
                    up_block_add_samples=up).sample
        ref = UNet2DConditionModel.forward(unet, sample, t, text).sample
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    # from_unet copies conv_in into both latent slots, zeros for the mask, and unties the bias
    w = branch.conv_in_condition.weight
    assert torch.equal(w[:, :4], unet.conv_in.weight) and torch.equal(w[:, 4:8], unet.conv_in.weight)
    assert torch.count_nonzero(w[:, 8:]) == 0
    assert branch.conv_in_condition.bias.data_ptr() != unet.conv_in.bias.data_ptr()


def test_add_samples_validation_and_lists_not_consumed():
    unet = _unet(layers=1)
    branch = _randomise(BrushNetModel.from_unet(unet)).eval()
    sample, t, text, cond = _inputs(h=8, w=8)
    with torch.no_grad():
        down, mid, up = branch(sample, t, encoder_hidden_states=text, brushnet_cond=cond, return_dict=False)
        down, up = list(down), list(up)
        a = unet(sample, t, text, down_block_add_samples=down, mid_block_add_sample=mid, up_block_add_samples=up).sample
        b = unet(sample, t, text, down_block_add_samples=down, mid_block_add_sample=mid, up_block_add_samples=up).sample
        assert torch.equal(a, b) and len(down) == unet.expected_add_samples()[0]
        with pytest.raises(ValueError, match="add-samples"):
            unet(sample, t, text, down_block_add_samples=down[:-1], mid_block_add_sample=mid, up_block_add_samples=up)
        with pytest.raises(ValueError, match="all three"):
            unet(sample, t, text, down_block_add_samples=down, mid_block_add_sample=None, up_block_add_samples=up)
        with pytest.raises(ValueError, match="does not match"):
            branch(sample, t, encoder_hidden_states=text, brushnet_cond=cond[..., :4], return_dict=False)


def test_conditioning_scale_is_linear():
    unet = _unet(layers=1)
    branch = _randomise(BrushNetModel.from_unet(unet)).eval()
    sample, t, text, cond = _inputs(h=8, w=8)
    with torch.no_grad():
        full = branch(sample, t, encoder_hidden_states=text, brushnet_cond=cond, conditioning_scale=1.0)
        half = branch(sample, t, encoder_hidden_states=text, brushnet_cond=cond, conditioning_scale=0.5)
    for a, b in zip(full.up_block_res_samples, half.up_block_res_samples, strict=True):
        torch.testing.assert_close(a * 0.5, b)
