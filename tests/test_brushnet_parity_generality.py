"""The parity tool must not depend on the public golden folder's sizes.

This writes a golden-format folder from our own implementation with another config
(layers_per_block=2, other channel widths, non-square image, 4 steps, other prompts and
scales) and checks that ``iiie.parity.brushnet`` reads it, derives every count from the
files and passes; then corrupts one recorded tensor and checks that it fails. (It tests the
tool's generality, not parity with the reference: that is test_brushnet_model.py.)

It also checks that the tool never passes on an incomplete or wrong folder: a section whose
files are absent fails unless skipped with its flag, and another model's golden folder is
refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_golden
from PIL import Image
from safetensors.torch import save_file

from iiie import masks as M
from iiie.models.brushnet import BrushNetModel, BrushNetUNet2DConditionModel
from iiie.models.brushnet.pipeline import BrushNetInpaintPipeline
from iiie.parity import brushnet as parity
from iiie.parity.common import GoldenFolderError
from iiie.tiny_weights.sd15 import write_tiny_sd15_base

W, H, STEPS = 96, 64, 4
PROMPT, NEGATIVE, GUIDANCE = "a yellow flower vase", "person", 5.0
GOLDEN = Path(__file__).resolve().parents[1].parent / "shared" / "golden"


def _write_golden(root):
    base = root / "base_sd15"
    write_tiny_sd15_base(base, seed=7)
    torch.manual_seed(7)
    unet = BrushNetUNet2DConditionModel(
        sample_size=8, layers_per_block=2, block_out_channels=(8, 16, 24), norm_num_groups=4,
        cross_attention_dim=32, attention_head_dim=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    )
    unet.save_pretrained(base / "unet")
    branch = BrushNetModel.from_unet(unet)
    g = torch.Generator().manual_seed(8)
    with torch.no_grad():
        for p in branch.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    branch.save_pretrained(root / "ckpt_branch")
    (root / "keys.txt").write_text("\n".join(branch.state_dict()) + "\n")

    # A1: module calls
    sample, cond = torch.randn(2, 4, 6, 10, generator=g), torch.randn(2, 5, 6, 10, generator=g)
    ehs, t = torch.randn(2, 77, 32, generator=g), torch.tensor([301])
    fwd = {"sample": sample, "brushnet_cond": cond, "encoder_hidden_states": ehs, "timestep": t}
    with torch.no_grad():
        for tag, s in (("scale_0_8", 0.8), ("scale_1_5", 1.5)):
            down, mid, up = branch(sample, t, encoder_hidden_states=ehs, brushnet_cond=cond,
                                   conditioning_scale=s, return_dict=False)
            fwd[f"{tag}.conditioning_scale"] = torch.tensor([s])
            fwd.update({f"{tag}.down_block_res_samples.{i:02d}": d for i, d in enumerate(down)})
            fwd.update({f"{tag}.up_block_res_samples.{i:02d}": u for i, u in enumerate(up)})
            fwd[f"{tag}.mid_block_res_sample"] = mid
            fwd[f"{tag}.unet_noise_pred"] = unet(sample, t, ehs, down_block_add_samples=down,
                                                 mid_block_add_sample=mid, up_block_add_samples=up).sample
        fwd["unet_noise_pred_no_brushnet"] = unet(sample, t, ehs).sample
    save_file({k: v.contiguous() for k, v in fwd.items()}, str(root / "brushnet_unet_forward.safetensors"))

    # A2: the pipeline, recorded with the parity tool's own hooks
    rng = np.random.default_rng(3)
    source = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    hole = M.box_to_mask((20, 10, 70, 50), (W, H))
    masked = source * (~hole[..., None])
    Image.fromarray(masked.astype(np.uint8)).save(root / "image_masked.png")
    M.mask_to_image(hole).convert("RGB").save(root / "mask.png")
    pipe = BrushNetInpaintPipeline.from_pretrained(base, brushnet=root / "ckpt_branch", scheduler=None)
    pipe.set_progress_bar_config(disable=True)
    pos, neg = pipe.encode_prompt(PROMPT, "cpu", 1, True, NEGATIVE)
    pipe.scheduler.set_timesteps(STEPS)
    pixels, _ = pipe.prepare_image_and_mask(Image.open(root / "image_masked.png"), Image.open(root / "mask.png"),
                                            1, None, None, False)
    latents = torch.randn(1, 4, H // 8, W // 8, generator=g)
    save_file({k: v.contiguous() for k, v in {
        "prompt_input_ids": pipe.tokenize([PROMPT]), "negative_prompt_input_ids": pipe.tokenize([NEGATIVE]),
        "prompt_embeds": pos, "negative_prompt_embeds": neg, "initial_latents": latents,
        "scheduler_timesteps": pipe.scheduler.timesteps.clone(), "image_preprocessed": pixels,
    }.items()}, str(root / "pipeline_inputs.safetensors"))
    eps = torch.randn(2, 4, H // 8, W // 8, generator=g)
    rec = parity._Recorder(pipe)
    after = []
    out = pipe(PROMPT, Image.open(root / "image_masked.png"), Image.open(root / "mask.png"),
               num_inference_steps=STEPS, guidance_scale=GUIDANCE, negative_prompt=NEGATIVE, latents=latents,
               brushnet_conditioning_scale=0.8, output_type="np", vae_posterior_eps=eps, blackout_hole=False,
               callback_on_step_end=lambda p, i, t, kw: after.append(kw["latents"].clone()) or {}).images
    rec.close()
    dist = pipe.vae.encode(pixels).latent_dist
    args, kwargs, (down, mid, up) = rec.branch[0]
    record = {"vae_posterior_eps": eps, "vae_posterior_mean": dist.mean.repeat(2, 1, 1, 1),
              "vae_posterior_std": dist.std.repeat(2, 1, 1, 1),
              "step0.brushnet_in.sample": args[0], "step0.brushnet_in.timestep": args[1].reshape(1),
              "step0.brushnet_in.encoder_hidden_states": kwargs["encoder_hidden_states"],
              "step0.brushnet_in.brushnet_cond": kwargs["brushnet_cond"], "step0.brushnet_out.mid": mid,
              "output_np": torch.from_numpy(out)}
    record["vae_posterior_sample"] = record["vae_posterior_mean"] + record["vae_posterior_std"] * eps
    record.update({f"step0.brushnet_out.down.{i:02d}": d for i, d in enumerate(down)})
    record.update({f"step0.brushnet_out.up.{i:02d}": u for i, u in enumerate(up)})
    for k in range(STEPS):
        record[f"step{k}.timestep"] = rec.branch[k][0][1].reshape(1)
        record[f"step{k}.unet_noise_pred_cfg_batch"] = rec.unet[k]
        record[f"step{k}.latents_after"] = after[k]
    save_file({k: v.clone().contiguous() for k, v in record.items()}, str(root / "pipeline_scale_0_8.safetensors"))
    meta = {"prompt": PROMPT, "negative_prompt": NEGATIVE, "num_inference_steps": STEPS,
            "guidance_scale": GUIDANCE, "height": H, "width": W}
    (root / "run_meta.json").write_text(json.dumps(meta))
    return record


def test_parity_tool_on_another_config(tmp_path):
    record = _write_golden(tmp_path)
    report = parity.run(tmp_path)
    names = {c.name for c in report.checks}
    assert "scale_0_8.step3.latents_after" in names  # 4 steps, from the file
    # 3 levels, 2 layers: 1 + 3*2 + 2 = 9 down and 3*3 + 2 = 11 up add-samples, from the file
    assert "scale_1_5.down_block_res_samples.08" in names and "scale_1_5.down_block_res_samples.09" not in names
    assert "scale_1_5.up_block_res_samples.10" in names
    assert report.ok, [c for c in report.checks if not c.ok]

    record["step2.latents_after"] = record["step2.latents_after"] * 1.01
    save_file({k: v.clone().contiguous() for k, v in record.items()}, str(tmp_path / "pipeline_scale_0_8.safetensors"))
    bad = parity.run(tmp_path)
    assert [c.name for c in bad.checks if not c.ok] == ["scale_0_8.step2.latents_after"]
    assert parity.main([str(tmp_path)]) == 1

    # the folder without its only pipeline run: a missing section, not a pass
    (tmp_path / "pipeline_scale_0_8.safetensors").unlink()
    report = parity.run(tmp_path)
    assert [m.name for m in report.missing_sections] == ["A2 pipeline"] and not report.ok
    assert all(c.ok for c in report.checks)  # what did run still passes
    assert parity.main([str(tmp_path)]) == 1
    assert parity.main([str(tmp_path), "--skip-pipeline"]) == 0


# ---------------------------------------------------------------- incomplete or wrong folders
def _golden_copy(name: str, tmp_path, drop: tuple[str, ...] = ()):
    """A copy of a shared golden folder without the files matching ``drop``."""
    src = GOLDEN / name
    require_golden(src)
    dst = tmp_path / name
    shutil.copytree(src, dst)
    for pattern in drop:
        matched = list(dst.glob(pattern))
        assert matched, pattern
        for path in matched:
            path.unlink()
    return dst


def test_golden_without_pipeline_files_fails_unless_skipped(tmp_path, capsys):
    golden = _golden_copy("brushnet", tmp_path, drop=("pipeline_*.safetensors",))
    assert parity.main([str(golden)]) == 1
    out = capsys.readouterr().out
    assert "FAIL missing section A2 pipeline: no pipeline_inputs.safetensors" in out
    assert parity.main([str(golden), "--skip-pipeline"]) == 0
    out = capsys.readouterr().out
    assert "skip section A2 pipeline" in out and "0 over" in out


def test_golden_without_one_listed_run_fails(tmp_path):
    """run_meta.json records scale_0_5: losing its files fails even though scale_1_0 passes."""
    golden = _golden_copy("brushnet", tmp_path, drop=("pipeline_scale_0_5.safetensors",
                                                      "pipeline_output_scale_0_5.npy"))
    report = parity.run(golden)
    assert [m.name for m in report.missing_sections] == ["A2 pipeline scale_0_5"]
    assert any(c.name == "scale_1_0.step2.latents_after" for c in report.checks)
    assert all(c.ok for c in report.checks) and not report.ok


def test_golden_without_modules_and_key_list_fails_unless_skipped(tmp_path, capsys):
    golden = _golden_copy("brushnet", tmp_path, drop=("brushnet_unet_forward.safetensors", "keys.txt"))
    assert parity.main([str(golden), "--skip-pipeline"]) == 1
    out = capsys.readouterr().out
    assert "FAIL missing section keys" in out and "FAIL missing section A1 modules" in out
    assert parity.main([str(golden), "--skip-pipeline", "--skip-modules", "--skip-keys"]) == 0
    out = capsys.readouterr().out
    assert out.count("skip section") == 3 and "keys (strict, in order)" in out


@pytest.mark.parametrize("other", ["powerpaint", "infedit"])
def test_brushnet_tool_refuses_another_models_golden(other, capsys):
    folder = GOLDEN / other
    require_golden(folder)
    with pytest.raises(GoldenFolderError, match=f"python -m iiie.parity {other}"):
        parity.run(folder)
    for flags in ([], ["--skip-pipeline", "--skip-modules", "--skip-keys"]):
        assert parity.main([str(folder), *flags]) == 2
        out = capsys.readouterr().out
        assert out.startswith("FAIL golden folder:") and f"python -m iiie.parity {other}" in out
