"""Named output-file rules for ``score_folder`` (``pattern=<name>``), where a benchmark's
published outputs are not one ``str.format`` template per sample.

``magicbrush``: MagicBrush ``evaluation/image_eval.py`` reads ``<generated>/<img_id>/``
and tells the turns apart by substrings of the file names (``get_all_turn_imgs``,
``get_final_turn_img``): the first edit has ``_1`` in its name (``<id>_1.png``), turn t of
the independent setting ``inde_<t>`` (``<id>_inde_2.png``), turn t of the iterative
setting ``iter_<t>``. Files are those with ``.png``/``.jpg`` in the name and without
``mask``; lists are ordered by the integer made of all digits of the path, as there.

* independent sample ``<id>-t<N>``: the N-th of the session's all-turn list (``_1`` files
  then ``inde_`` files, sorted); a list whose length is not the session's number of turns
  is that sample's error (the reference stops the whole run on it) instead of pairing
  turn 2 with the wrong file;
* final-turn sample ``<id>``: the folder's only image if it is named ``_1``, otherwise the
  last ``iter_`` file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from iiie.data.base import Sample
from iiie.errors import SampleError


def _digits(name: str) -> int:
    return int("".join(ch for ch in name if ch.isdigit()) or 0)


def _images(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise SampleError(f"magicbrush outputs: no folder {folder}")
    names = [n for n in os.listdir(folder) if ".png" in n or ".jpg" in n]
    return [n for n in names if "mask" not in n]


def magicbrush_all_turns(folder: Path) -> list[Path]:
    """``get_all_turn_imgs(dir, 'generated')``: the independent setting's turn files."""
    names = _images(folder)
    if not names:
        raise SampleError(f"magicbrush outputs: no image in {folder}")
    if len(names) == 1:
        if "_1" not in names[0]:
            raise SampleError(f"magicbrush outputs: the only image {folder / names[0]} is not named *_1*")
        return [folder / names[0]]
    paths = [folder / n for n in names if "_1" in n] + [folder / n for n in names if "inde_" in n]
    paths.sort(key=lambda p: _digits(str(p)))  # the reference sorts the joined paths
    return paths


def magicbrush_final_turn(folder: Path) -> Path:
    """``get_final_turn_img(dir, 'generated')``: the iterative setting's last turn."""
    names = _images(folder)
    if len(names) == 1:
        if "_1" not in names[0]:
            raise SampleError(f"magicbrush outputs: the only image {folder / names[0]} is not named *_1*")
        return folder / names[0]
    iters = sorted((n for n in names if "iter_" in n), key=_digits)
    if not iters:
        raise SampleError(f"magicbrush outputs: no iter_<t> file in {folder} for the final turn")
    return folder / iters[-1]


def magicbrush_output(edited: Path, sample: Sample) -> Path:
    """The output file of one MagicBrush sample (independent turn or final turn)."""
    extra = sample.truth.extra
    if "session" not in extra:
        raise SampleError("pattern=magicbrush needs data=magicbrush samples (no session field)")
    folder = Path(edited) / str(extra["session"])
    if sample.request.meta.get("setting") == "final_turn":
        return magicbrush_final_turn(folder)
    turns = magicbrush_all_turns(folder)
    n_turns, turn = int(extra["n_turns"]), int(extra["turn"])
    if len(turns) != n_turns:
        raise SampleError(
            f"magicbrush outputs: {len(turns)} turn files in {folder} "
            f"({', '.join(p.name for p in turns)}) for a {n_turns}-turn session; expected "
            "<id>_1.png and <id>_inde_<t>.png for t = 2..N"
        )
    return turns[turn - 1]


#: ``score_folder`` pattern name -> rule (edited folder, sample) -> file.
NAMED_PATTERNS: dict[str, Callable[[Path, Sample], Path]] = {"magicbrush": magicbrush_output}
