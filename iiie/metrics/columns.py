"""One-line meanings of the benchmark and judge columns, for table footers and the README.

Kept beside the metrics that produce them; the report module can merge this dict into its
own ``COLUMN_DOCS``. ``tests/test_metrics_benchmarks.py`` checks that every column the
metrics emit is listed here.
"""

from __future__ import annotations

#: Column order for these metrics (the table puts them after the synthetic columns).
COLUMN_ORDER = [
    "mb_l1", "mb_l2", "mb_clip_i", "mb_dino", "mb_clip_t",
    "emu_clip_dir", "emu_clip_i", "emu_clip_out", "emu_l1", "emu_dino",
    "pie_structure_distance", "pie_psnr", "pie_lpips", "pie_mse", "pie_ssim",
    "pie_clip_whole", "pie_clip_edited",
    "edit_faithfulness", "content_preservation", "overall",
    "vie_sc", "vie_pq", "vie_overall",
    "verified", "rounds",
]  # fmt: skip

COLUMN_DOCS = {
    "mb_l1": "MagicBrush L1: mean |output - target|, [0,1] RGB, output resized to target (lower is better)",
    "mb_l2": "MagicBrush L2: mean squared error to the target (lower is better)",
    "mb_clip_i": "MagicBrush CLIP-I: CLIP ViT-B/32 image cosine, output vs target",
    "mb_dino": "MagicBrush DINO: DINO ViT-S/16 CLS cosine, output vs target",
    "mb_clip_t": "MagicBrush CLIP-T: CLIP cosine of the output and the target's local description",
    "emu_clip_dir": "Emu Edit CLIP-dir: cosine of image change and caption change (CLIP)",
    "emu_clip_i": "Emu Edit CLIP-I: CLIP image cosine, input vs output",
    "emu_clip_out": "Emu Edit CLIP-out: CLIP cosine of the output and the output caption",
    "emu_l1": "Emu Edit L1: mean |output - input| on [0,1] RGB (lower is better)",
    "emu_dino": "Emu Edit DINO: DINO ViT-S/16 CLS cosine, input vs output",
    "pie_structure_distance": "PIE-Bench structure distance: DINO ViT-B/8 key self-similarity MSE (lower is better)",
    "pie_psnr": "PIE-Bench background PSNR (dB, capped at 100), outside the benchmark mask",
    "pie_lpips": "PIE-Bench background LPIPS (SqueezeNet), outside the mask (lower is better)",
    "pie_mse": "PIE-Bench background MSE, outside the mask (lower is better)",
    "pie_ssim": "PIE-Bench background SSIM, outside the mask",
    "pie_clip_whole": "PIE-Bench CLIP score (ViT-L/14, x100) of the output and the target prompt",
    "pie_clip_edited": "PIE-Bench CLIP score of the masked (edited) region and the target prompt",
    "verified": "verify=judge: share of samples whose kept edit the verifier accepted",
    "rounds": "verify=judge: judged rounds per sample (1 = accepted or given up at once)",
    "edit_faithfulness": "VLM judge, MAGIC protocol: majority yes (1) / no (0), the edit does what was asked",
    "content_preservation": "VLM judge, MAGIC protocol: majority yes/no, the rest of the image is kept",
    "overall": "VLM judge, MAGIC protocol: majority yes/no, acceptable overall",
    "vie_sc": "VIEScore semantic consistency: min(editing success, over-editing), 0..10",
    "vie_pq": "VIEScore perceptual quality: min(naturalness, artifacts), 0..10",
    "vie_overall": "VIEScore overall: sqrt(SC * PQ), 0..10",
}
