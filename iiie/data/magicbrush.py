"""MagicBrush test set (``data=magicbrush``) in the released ``test/`` layout.

::

    <root>/images/<img_id>/<img_id>-input.png
    <root>/images/<img_id>/<img_id>-output<N>.png   ground-truth result of turn N
    <root>/images/<img_id>/<img_id>-mask<N>.png     region drawn for turn N
    <root>/edit_sessions.json     {img_id: [{"input", "mask", "output", "instruction"}, ...]}
    <root>/local_descriptions.json   {img_id: {"<img_id>-output<N>.png": text}}
    <root>/global_descriptions.json  {img_id: {"<img_id>-input.png": text, ...}}

Two settings, as in the MagicBrush evaluation:

* ``independent`` (single-turn): one sample per turn, ``<img_id>-t<N>``; turn N starts
  from the ground-truth image its session lists as input (``input.png`` for turn 1,
  ``output<N-1>.png`` after), and its target is ``output<N>.png``.
* ``sequential`` (the reference's multi-turn protocol): one sample per turn, like
  ``independent``, but turn N > 1 is applied to the method's *own* output of turn N-1:
  :meth:`previous` links the turns, and the runner runs them in order and puts turn N-1's
  edited image in place of the loader's (which is the input for turn 1 and, as a
  placeholder that the runner always replaces, the session's input after). Each turn is
  cached; a changed turn recomputes the turns after it. The last turn of each session
  against the final ``output`` is the final-turn score.
* ``final_turn``: one sample per session, ``<img_id>``, starting from ``input.png`` with
  the final ``output`` as target, the instructions joined with "; then " in one shot (the
  turns are in ``meta["turns"]``): a one-shot approximation, not the reference's
  iterative protocol (that is ``sequential``). The mask is the union of the turns'.

Captions: ``truth.target_caption`` is the *local* description of the target (what
CLIP-T scores against), ``truth.source_caption`` the global description of the input,
and ``truth.extra["global_target_caption"]`` the target's global description.
MagicBrush has no edit-type labels, so ``truth.category`` is None. Images are decoded as
``image_eval.py`` reads them (``decode: reference``: ``Image.open(...).convert('RGB')``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from iiie.data.base import Dataset, GroundTruth, Sample, oracle_meta
from iiie.data.folder import load_mask
from iiie.errors import DatasetNotFoundError
from iiie.imageio import check_decode, load_image
from iiie.types import EditRequest

SETTINGS = ("independent", "sequential", "final_turn")


def _read_json(path: Path, required: bool) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise DatasetNotFoundError.for_root("magicbrush", f"{path.name} not found: {path}")
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


class MagicBrushDataset(Dataset):
    name = "magicbrush"

    def __init__(
        self,
        root: str,
        setting: str = "independent",
        n: int | None = None,
        decode: str = "reference",
    ) -> None:
        if setting not in SETTINGS:
            raise ValueError(f"magicbrush setting must be one of {SETTINGS}, got {setting!r}")
        self.root = Path(root).expanduser()
        self.setting = setting
        self.decode = check_decode(decode)
        self.n = None if n is None else int(n)
        self.sessions_path = self.root / "edit_sessions.json"
        self.sessions: dict[str, list[dict[str, str]]] = _read_json(self.sessions_path, True)
        self.local = _read_json(self.root / "local_descriptions.json", False)
        self.global_ = _read_json(self.root / "global_descriptions.json", False)
        keys: list[str] = []
        for img_id in sorted(self.sessions):
            turns = self.sessions[img_id]
            if not turns:
                continue
            for t, turn in enumerate(turns, 1):
                for k in ("input", "output", "instruction"):
                    if k not in turn:
                        raise ValueError(
                            f"{self.sessions_path}: session {img_id} turn {t} lacks {k!r}"
                        )
            if setting != "final_turn":
                keys += [f"{img_id}-t{t}" for t in range(1, len(turns) + 1)]
            else:
                keys.append(img_id)
        self._ids = keys if self.n is None else keys[: self.n]

    def ids(self) -> list[str]:
        return list(self._ids)

    def fingerprint(self) -> dict[str, Any]:
        sizes = []
        for name in ("edit_sessions.json", "local_descriptions.json", "global_descriptions.json"):
            p = self.root / name
            sizes.append([name, p.stat().st_size if p.exists() else None])
        return {
            "name": self.name,
            "version": 1,
            "root": str(self.root.resolve()),
            "setting": self.setting,
            "decode": self.decode,
            "files": sizes,
        }

    def previous(self, sample_id: str) -> str | None:
        """``sequential``: turn N > 1 edits the method's own output of turn N-1."""
        if self.setting != "sequential":
            return None
        img_id, (t,) = self._parse_id(sample_id)
        return f"{img_id}-t{t}" if t > 0 else None

    def _image(self, img_id: str, file: str):
        return load_image(self.root / "images" / img_id / file, decode=self.decode)

    def _parse_id(self, sample_id: str) -> tuple[str, list[int]]:
        if self.setting == "final_turn":
            if sample_id not in self.sessions:
                raise KeyError(f"magicbrush: unknown session {sample_id!r}")
            return sample_id, list(range(len(self.sessions[sample_id])))
        img_id, sep, turn = sample_id.rpartition("-t")
        if not sep or img_id not in self.sessions or not turn.isdigit():
            raise KeyError(f"magicbrush: unknown sample id {sample_id!r}")
        t = int(turn)
        if not 1 <= t <= len(self.sessions[img_id]):
            raise KeyError(f"magicbrush: {img_id} has no turn {t}")
        return img_id, [t - 1]

    def load(self, sample_id: str) -> Sample:
        img_id, turn_idx = self._parse_id(sample_id)
        turns = [self.sessions[img_id][i] for i in turn_idx]
        first, last = turns[0], turns[-1]
        # sequential: never the ground-truth output of the previous turn, even as a placeholder
        image = self._image(img_id, self.sessions[img_id][0]["input"] if self.setting == "sequential" else first["input"])
        target = self._image(img_id, last["output"])
        mask = None
        for turn in turns:
            if turn.get("mask"):
                m = load_mask(self.root / "images" / img_id / turn["mask"], image.size)
                mask = m if mask is None else np.logical_or(mask, m)
        instructions = [t["instruction"] for t in turns]
        local = self.local.get(img_id, {})
        glob = self.global_.get(img_id, {})
        truth = GroundTruth(
            mask=mask,
            target=target,
            source_caption=glob.get(first["input"]),
            target_caption=local.get(last["output"]),
            extra={
                "session": img_id,
                "turns": [i + 1 for i in turn_idx],
                "turn": str(turn_idx[-1] + 1),  # for score_folder patterns
                "n_turns": len(self.sessions[img_id]),
                "global_target_caption": glob.get(last["output"]),
                "target_file": last["output"],
            },
        )
        request = EditRequest(
            id=sample_id,
            image=image,
            instruction="; then ".join(instructions),
            meta={
                "benchmark": self.name,
                "turns": instructions,
                "setting": self.setting,
                **oracle_meta(mask),
            },
        )
        return Sample(request=request, truth=truth)
