"""InfEdit: reference parity, token alignment, sampler/control/blend properties.

The model tests run on tiny random LCM weights written by ``iiie.tiny_weights.infedit``
and loaded through the same code users run. The parity test replays the reference's
recordings in ``../shared/golden/infedit`` (skipped when that folder is absent).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import require_golden

from iiie.models.infedit import (
    AlignmentError,
    InfEditPipeline,
    InfEditSettings,
    LocalBlend,
    UnifiedAttentionControl,
)
from iiie.models.infedit.aligner import align_tokens, target_to_source
from iiie.models.infedit.blend import level_size
from iiie.models.infedit.ddcm import ddcm_step

GOLDEN = Path(__file__).resolve().parents[1].parent / "shared" / "golden" / "infedit"

SRC = "a cat sitting on the table"
TGT = "a dog sitting on the table"


@pytest.fixture(scope="session")
def pipe(tiny_lcm) -> InfEditPipeline:
    pipe = InfEditPipeline.from_pretrained(tiny_lcm)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _image(h=64, w=48, seed=0) -> torch.Tensor:
    """A random (1, 3, h, w) image in [0, 1] (diffusers' range for tensors)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, h, w, generator=g)


def _run(pipe, settings, src=SRC, tgt=TGT, seed=0, image=None, **kw):
    trace: dict = {}
    out = pipe(_image() if image is None else image, src, tgt, settings,
               generator=torch.Generator().manual_seed(seed), trace=trace, output_type="pt", **kw)
    return out, trace


# ---------------------------------------------------------------- reference parity
@pytest.mark.timeout(1800)
def test_parity_with_reference_golden(capsys):
    require_golden(GOLDEN)
    from iiie.parity.__main__ import main

    rc = main(["infedit", str(GOLDEN)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "0 over" in out
    assert "edit_local.step0.unet_out" in out and "edit_local.output" in out
    assert "skip section run reconstruct_g1_g2: storage_level check_only" in out


def _golden_copy(tmp_path, drop: tuple[str, ...]) -> Path:
    """A copy of the InfEdit golden folder without the files matching ``drop``."""
    require_golden(GOLDEN)
    dst = tmp_path / "infedit"
    shutil.copytree(GOLDEN, dst)
    for pattern in drop:
        matched = list(dst.glob(pattern))
        assert matched, pattern
        for path in matched:
            path.unlink()
    return dst


@pytest.mark.timeout(900)
def test_parity_missing_runs_fail_unless_skipped(tmp_path, capsys):
    from iiie.parity.__main__ import main

    golden = _golden_copy(tmp_path, drop=("edit_local*", "global_style*", "reconstruct*", "no_control*"))
    assert main(["infedit", str(golden)]) == 1
    out = capsys.readouterr().out
    for run in ("edit_local", "edit_local_piebench", "global_style", "reconstruct", "no_control"):
        assert f"FAIL missing section run {run}:" in out, run
    assert main(["infedit", str(golden), "--skip-pipeline"]) == 0
    out = capsys.readouterr().out
    assert "skip section runs: --skip-pipeline given" in out and "ok   modules.unet_out" in out


@pytest.mark.timeout(900)
def test_parity_missing_modules_and_stored_keys_fail(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    from iiie.parity.__main__ import main

    golden = _golden_copy(tmp_path, drop=("modules.safetensors",))
    assert main(["infedit", str(golden), "--skip-pipeline"]) == 1
    assert "FAIL missing section modules: no modules.safetensors" in capsys.readouterr().out
    assert main(["infedit", str(golden), "--skip-pipeline", "--skip-modules"]) == 1  # nothing checked at all
    capsys.readouterr()
    # a key run_meta.json lists as stored, absent from the run's file (the run replays, 1 run only)
    tensors = load_file(str(golden / "reconstruct.safetensors"))
    del tensors["step1.e_t"]
    save_file(tensors, str(golden / "reconstruct.safetensors"))
    assert main(["infedit", str(golden), "--skip-modules", "--runs", "reconstruct"]) == 1
    out = capsys.readouterr().out
    assert "FAIL missing section run reconstruct: 1 of run_meta.json's stored_keys" in out
    assert "skip section run edit_local: not named in --runs" in out
    assert "ok   reconstruct.output" in out


@pytest.mark.parametrize("other", ["brushnet", "powerpaint"])
def test_parity_refuses_another_models_golden(other, capsys):
    from iiie.parity.__main__ import main

    folder = GOLDEN.parent / other
    require_golden(folder)
    assert main(["infedit", str(folder), "--skip-pipeline"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("FAIL golden folder:") and f"python -m iiie.parity {other}" in out


# ---------------------------------------------------------------- token alignment
def test_alignment_inserted_words_have_no_source_token():
    # ids: BOS=100, EOS=101; "a cat on table" -> "a cat on table in winter"
    x = [100, 1, 2, 3, 4, 101]
    y = [100, 1, 2, 3, 4, 5, 6, 101]
    assert target_to_source(x, y) == [0, 1, 2, 3, 4, -1, -1, 5]
    states = torch.randn(77, 8)
    al = align_tokens(x, y, [100, 101], [100, 101], states, states)
    assert al.alphas[:8].tolist() == [1, 1, 1, 1, 1, 0, 0, 1]
    assert al.mapper[5] == -1 and al.mapper[7] == 5
    assert al.mapper[8:].tolist() == list(range(8, 77))  # identity past the target
    assert al.target_len == 8 and al.alpha_e.sum() == 0


def test_alignment_reattaches_a_substituted_word_and_marks_words():
    x = [100, 1, 2, 3, 101]  # a cat table
    y = [100, 1, 9, 3, 101]  # a dog table
    states = torch.randn(77, 8)
    al = align_tokens(x, y, [100, 9, 101], [100, 3, 101], states, states)
    assert al.mapper[:5].tolist() == [0, 1, 2, 3, 4]  # dog re-attached to cat
    assert al.alphas[:5].tolist() == [1, 1, 1, 1, 1]
    assert al.alpha_e.nonzero().flatten().tolist() == [2]
    assert al.alpha_m.nonzero().flatten().tolist() == [3]
    assert al.alpha_me.sum() == 0
    # a word that is both local and mutual
    both = align_tokens(x, y, [100, 3, 101], [100, 3, 101], states, states)
    assert both.alpha_me.nonzero().flatten().tolist() == [3]


def test_alignment_errors_and_warnings():
    x = [100, 1, 2, 3, 101]
    y = [100, 1, 9, 3, 101]
    states = torch.randn(77, 8)
    with pytest.raises(AlignmentError, match="not shared"):
        align_tokens(x, y, [100, 101], [100, 9, 101], states, states)  # dog is not in the source
    with pytest.raises(AlignmentError, match="not found"):
        align_tokens(x, y, [100, 101], [100, 7, 101], states, states)
    al = align_tokens(x, y, [100, 7, 101], [100, 101], states, states)
    assert al.warnings and al.alpha_e.sum() == 0


# ---------------------------------------------------------------- DDCM step
def test_ddcm_step_formulas():
    g = torch.Generator().manual_seed(0)
    x_s, x_e, e_s, e_e, x0, noise = (torch.randn(1, 4, 3, 3, generator=g) for _ in range(6))
    a_t, a_p = torch.tensor(0.3), torch.tensor(0.6)
    out = ddcm_step(a_t, a_p, x_s, x_e, e_s, e_e, x0, noise, eta=0.5)
    e_c = (x_s - a_t.sqrt() * x0) / (1 - a_t).sqrt()
    pred = x0 + ((x_e - x_s) - (1 - a_t).sqrt() * (e_e - e_s)) / a_t.sqrt()
    sigma2 = 0.5 * (1 - a_p)
    eps = (e_e - e_s) + e_c
    torch.testing.assert_close(out.pred_x0, pred)
    torch.testing.assert_close(out.x_e_next, a_p.sqrt() * pred + (1 - a_p - sigma2).sqrt() * eps
                               + sigma2.sqrt() * noise)
    torch.testing.assert_close(out.x_s_next, a_p.sqrt() * x0 + (1 - a_p - sigma2).sqrt() * eps
                               + sigma2.sqrt() * noise)
    # equal branches give back the clean latent; one-step schedules ignore the noise
    same = ddcm_step(a_t, a_p, x_s, x_s, e_s, e_s, x0, noise, eta=1.0, single_step=True)
    assert torch.equal(same.pred_x0, x0) and torch.equal(same.x_s_next, x0)


# ---------------------------------------------------------------- pipeline properties
@pytest.fixture
def one_thread():
    """Identical rows of one batch can round differently when CPU kernels split the batch
    across threads; the exactness properties are checked on one thread, as the reference
    recorded them."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_identical_captions_equal_guidance_reconstruct_every_step(pipe, one_thread):
    s = InfEditSettings(num_inference_steps=4, guidance_s=2.0, guidance_t=2.0)
    out, trace = _run(pipe, s, src=SRC, tgt=SRC)
    x0 = trace["clean_latents"]
    for k in range(4):
        assert torch.equal(trace[f"step{k}.pred_x0_t"], x0), f"step {k}"
    assert torch.equal(out.pred_x0, x0)
    # unequal guidance does not cancel (the reference behaves the same)
    _, other = _run(pipe, replace(s, guidance_s=1.0), src=SRC, tgt=SRC)
    assert (other["step0.pred_x0_t"] - x0).abs().max() > 1e-3


def test_control_off_equals_plain_ddcm_with_stock_attention(pipe, one_thread):
    """Replace schedules at 0 and no blend words: the target branch is plain DDCM."""
    from diffusers.models.attention_processor import AttnProcessor

    before = dict(pipe.unet.attn_processors)
    plain = InfEditSettings(num_inference_steps=4, control=False)
    zero = InfEditSettings(num_inference_steps=4, cross_replace_steps=0.0, self_replace_steps=0.0)
    out_zero, t_zero = _run(pipe, zero)
    # the processors were restored after the controlled run
    assert {k: type(v) for k, v in pipe.unet.attn_processors.items()} == {
        k: type(v) for k, v in before.items()}
    out_sdpa, t_sdpa = _run(pipe, plain)  # the UNet's default (SDPA) processors
    pipe.unet.set_attn_processor(AttnProcessor())  # stock explicit attention, as the reference
    try:
        out_plain, t_plain = _run(pipe, plain)
    finally:
        pipe.unet.set_attn_processor(before)
    for k in range(4):
        assert torch.equal(t_zero[f"step{k}.pred_x0_t"], t_plain[f"step{k}.pred_x0_t"]), f"step {k}"
        torch.testing.assert_close(t_zero[f"step{k}.pred_x0_t"], t_sdpa[f"step{k}.pred_x0_t"],
                                   atol=1e-4, rtol=1e-4)
    assert torch.equal(out_zero.images, out_plain.images)
    # and control on (defaults) really changes the result
    out_on, _ = _run(pipe, InfEditSettings(num_inference_steps=4))
    assert (out_on.images - out_plain.images).abs().max() > 1e-3


def test_blend_keeps_masked_out_latents_from_source_and_mutual(pipe):
    s = InfEditSettings(num_inference_steps=4, local="dog", mutual="table", thresh_e=0.3, thresh_m=0.3)
    _, trace = _run(pipe, s)
    saw_m = saw_e = False
    for k in range(1, 4):
        mask_m = trace[f"step{k}.blend.mask_m"].bool().expand_as(trace[f"step{k}.x_t_next"])
        mask_e = trace[f"step{k}.blend.mask_e"].bool().expand_as(mask_m)
        x_t, x_s, x_m = trace[f"step{k}.x_t_next"], trace[f"step{k}.x_s_next"], trace[f"step{k}.x_m_next"]
        pre = trace[f"step{k}.x_t_next_preblend"]
        assert torch.equal(x_t[mask_m], x_s[mask_m])
        keep = ~mask_m
        assert torch.equal(x_t[keep & mask_e], pre[keep & mask_e])
        if k != 2:  # not the use_xm step (steps - 2): there mask_me may also apply
            assert torch.equal(x_t[keep & ~mask_e], x_m[keep & ~mask_e])
        saw_m |= bool(mask_m.any()) and bool((~mask_m).any())
        saw_e |= bool(mask_e.any())
    assert saw_m and saw_e, "the tiny model should give non-trivial blend masks"


def test_local_blend_unit():
    """LocalBlend alone: words select maps; NaN (no words) gives empty masks."""
    h, w = 8, 12
    hh, ww = level_size(h, 2), level_size(w, 2)
    heads = 2
    maps = torch.zeros(2 * heads, hh * ww, 77)
    maps[:, : (hh * ww) // 2, 2] = 1.0  # word at position 2 attends to the first half
    store, order = {"l": maps}, ["l"]
    alpha_e = torch.zeros(77)
    alpha_e[2] = 1
    blend = LocalBlend(alpha_e=alpha_e, alpha_m=torch.zeros(77), target_len=5, thresh_e=0.5, thresh_m=0.5)
    x_s, x_t, x_m = (torch.full((1, 4, h, w), v) for v in (1.0, 2.0, 3.0))
    out = blend(1, x_s, x_t, x_m, store, order, torch.tensor(0.9), use_xm=False)
    top = out[..., : h // 2, :]
    assert torch.all(out[..., h // 2:, :] == 3.0)  # outside the word map: mutual branch
    assert torch.any(top == 2.0)
    none = LocalBlend(alpha_e=torch.zeros(77), alpha_m=torch.zeros(77), target_len=5)
    assert torch.equal(none(1, x_s, x_t, x_m, store, order, torch.tensor(0.9), True), x_t)


def test_replacement_variants_differ_and_are_validated(pipe):
    s = InfEditSettings(num_inference_steps=4, cross_replace_steps=1.0, self_replace_steps=0.0)
    a, _ = _run(pipe, s)
    b, _ = _run(pipe, replace(s, replace_with="mutual"))
    assert (a.images - b.images).abs().max() > 1e-4
    with pytest.raises(ValueError, match="replace_with"):
        UnifiedAttentionControl(mapper=torch.arange(77), alphas=torch.ones(77), num_steps=4,
                                replace_with="target")


@pytest.mark.parametrize("hw", [(72, 56), (40, 104)])
def test_blend_works_at_any_size(pipe, hw):
    s = InfEditSettings(num_inference_steps=3, local="dog", mutual="table")
    out, trace = _run(pipe, s, image=_image(*hw))
    assert out.images.shape[-2:] == hw
    lat = (hw[0] // 8, hw[1] // 8)
    assert trace["step1.blend.mask_e"].shape[-2:] == lat
    assert torch.isfinite(out.images).all()


def test_denoise_model_strength_and_single_step(pipe):
    s = InfEditSettings(num_inference_steps=5, denoise_model=True, strength=0.8)
    out, trace = _run(pipe, s)
    assert len(trace["timesteps"]) == 4  # trunc(5 * 0.8) steps, the first one skipped
    sched_full = pipe.scheduler.timesteps
    assert torch.equal(trace["timesteps"], sched_full[1:].cpu())
    x0, noise = trace["clean_latents"], trace["initial_noise"]
    a0 = pipe.scheduler.alphas_cumprod[int(trace["timesteps"][0])]
    torch.testing.assert_close(trace["step0.x_t_in"], a0.sqrt() * x0 + (1 - a0).sqrt() * noise)
    one, _ = _run(pipe, InfEditSettings(num_inference_steps=1))
    assert torch.isfinite(one.images).all()


def test_seeded_runs_repeat_and_settings_are_checked(pipe):
    s = InfEditSettings(num_inference_steps=2)
    a, _ = _run(pipe, s, seed=3)
    b, _ = _run(pipe, s, seed=3)
    c, _ = _run(pipe, s, seed=4)
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)
    with pytest.raises(ValueError, match="eta"):
        InfEditSettings(eta=1.5)
    with pytest.raises(ValueError, match="unknown"):
        InfEditSettings.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="multiple"):
        pipe(_image(60, 48), SRC, TGT, s)


def test_fast_self_attention_matches_explicit(pipe):
    s = InfEditSettings(num_inference_steps=3, local="dog", mutual="table")
    a, ta = _run(pipe, s)
    b, tb = _run(pipe, replace(s, fast_self_attention=True))
    torch.testing.assert_close(tb["step0.e_t"], ta["step0.e_t"], atol=1e-4, rtol=1e-4)
    assert (a.images - b.images).abs().max() < 1e-2


def test_half_precision_runs(tiny_lcm):
    """dtype handling (scheduler tables stay float32) in a reduced precision, on the CPU."""
    half = InfEditPipeline.from_pretrained(tiny_lcm, dtype=torch.bfloat16)
    half.set_progress_bar_config(disable=True)
    out, trace = _run(half, InfEditSettings(num_inference_steps=2, local="dog", mutual="table"))
    assert out.images.dtype == torch.bfloat16 and trace["step1.x_t_next"].dtype == torch.bfloat16
    assert torch.isfinite(out.images.float()).all()


def test_batch_equals_single_runs(pipe, one_thread):
    """Samples with different captions and blend words edited in one UNet batch give what
    they give alone (each keeps its own generator, alignment, store and blend)."""
    s = InfEditSettings(num_inference_steps=3)
    jobs = [
        (SRC, TGT, "dog", "table", 0),
        (SRC, "a cat sitting on the table in winter", "", "", 1),
        ("a red vase on the table", "a blue vase on the table", "blue", "vase", 2),
    ]
    images = torch.cat([_image(seed=k) for k in range(3)])
    alignments = [pipe.align(a, b, lo, mu) for a, b, lo, mu, _ in jobs]
    batch = pipe(images, [j[0] for j in jobs], [j[1] for j in jobs], s,
                 generator=[torch.Generator().manual_seed(j[4]) for j in jobs],
                 alignments=alignments, output_type="pt")
    for k, (a, b, lo, mu, seed) in enumerate(jobs):
        single, _ = _run(pipe, replace(s, local=lo, mutual=mu), src=a, tgt=b, seed=seed,
                         image=images[k:k + 1])
        torch.testing.assert_close(batch.pred_x0[k:k + 1], single.pred_x0, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(batch.images[k:k + 1], single.images, atol=1e-3, rtol=0)


def test_blend_layers_are_the_references_at_sd15_proportions():
    """Level 2 (1/4 of the latent) in an SD1.5-shaped UNet is exactly the reference's
    ``down_cross[2:4] + up_cross[:3]`` (at 512 px: the 16x16 layers)."""
    from diffusers import UNet2DConditionModel

    from iiie.models.infedit.control import layer_infos

    unet = UNet2DConditionModel(
        sample_size=8, layers_per_block=2, block_out_channels=(8, 8, 8, 8), norm_num_groups=4,
        cross_attention_dim=8, attention_head_dim=2,
    )
    chosen = [i.name.split(".transformer_blocks")[0] for i in layer_infos(unet).values()
              if i.is_cross and i.level == 2 and i.place != "mid"]
    assert chosen == ["down_blocks.2.attentions.0", "down_blocks.2.attentions.1",
                      "up_blocks.1.attentions.0", "up_blocks.1.attentions.1", "up_blocks.1.attentions.2"]
    assert level_size(64, 2) == 16 and level_size(40, 2) == 10 and level_size(9, 2) == 3


# ---------------------------------------------------------------- tolerances of the parity tool
def test_pred_x0_tolerance_is_derived_from_the_step_alpha_and_says_rounding_or_not():
    from iiie.parity.common import Report
    from iiie.parity.infedit import STEP_TOL, _compare_pred_x0, pred_x0_tolerance

    meta = {"alphas_cumprod_at_timesteps": [0.0047, 0.052, 0.278, 0.659]}
    tol, how = pred_x0_tolerance("step3.pred_x0_t", meta)
    assert tol == pytest.approx(STEP_TOL * (1 + (1 - 0.659) ** 0.5) / 0.659**0.5) and "a=0.659" in how
    assert pred_x0_tolerance("pred_x0_final", meta)[0] == tol
    assert pred_x0_tolerance("step0.pred_x0_t", meta)[0] > 25 * STEP_TOL  # t = 999: 1/sqrt(a) ~ 15
    assert pred_x0_tolerance("step1.e_t", meta) is None
    # the private golden's case: 1.03e-4 abs on values of about 18 (5.7e-6 relative)
    ref = torch.full((4, 8, 8), 18.0)
    report = Report("t")
    _compare_pred_x0(report, "rounding", ref + 1.03e-4, ref, tol, how)
    _compare_pred_x0(report, "real", ref + 3 * tol, ref, tol, how)
    rounding, real = report.checks
    assert rounding.ok and "rounding amplified" in rounding.note
    assert not real.ok and "real difference" in real.note


def test_mask_ties_are_judged_from_the_reference_map_only_and_capped():
    from iiie.parity.infedit import _MaskTies

    ref = torch.zeros(1, 1, 10, 10, dtype=torch.bool)
    ref[..., :5, :] = True
    ours = ref.clone()
    ours[..., 0, :4] = False  # 4 px differ
    thresh = 0.5
    ref_map = torch.where(ref, 0.9, 0.1).double()
    ref_map[..., 0, :2] = thresh + 5e-5  # 2 of them are recorded as near-threshold ties
    our_map = torch.full_like(ref_map, thresh)  # our map says "all near": must not count
    key = "blend.mask_e"
    ties = _MaskTies({f"step1.{key}": ref, f"step1.{key}_map": ref_map})
    fixed = ties(1, "mask_e", ours, our_map, thresh)
    assert ties.ties[f"step1.{key}"] == 2 and ties.hard[f"step1.{key}"] == 2
    assert int((fixed != ref).sum()) == 2  # only the recorded ties took the reference value
    no_map = _MaskTies({f"step1.{key}": ref})
    no_map(1, "mask_e", ours, our_map, thresh)
    assert no_map.ties[f"step1.{key}"] == 0 and no_map.hard[f"step1.{key}"] == 4
