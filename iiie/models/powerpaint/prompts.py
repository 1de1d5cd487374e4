"""Prompt construction for PowerPaint v2's tasks, as the reference app builds it.

PowerPaint v2 reads two kinds of prompt:

* the *task prompts* ``promptA``/``promptB`` (and their negatives) go through
  ``text_encoder_brushnet`` to the BrushNet branch; the two are blended as
  ``A * t + B * (1 - t)`` with ``t`` the "fitting degree" (``tradoff``; ``tradoff_nag`` for
  the negatives);
* the *user prompt* ``promptU`` (and ``negative_promptU``) goes through the base text
  encoder to the UNet.

In v2 the task prompts hold only task words: the user's text never reaches the branch.
The mapping below follows the reference ``app.py`` (open-mmlab/PowerPaint at 5b4c3d5,
``add_task`` and ``predict`` for versions other than ``ppt-v1``):

=================  =================  =================  ==========================
task               promptA / promptB  negative A / B     promptU
=================  =================  =================  ==========================
text-guided        " P_obj" / same    "P_obj" / same     prompt
object-removal     " P_ctxt" / same   " P_obj" / same    prompt + " empty scene blur"
context-aware      " P_ctxt" / same   " P_obj" / same    prompt + " empty scene"
shape-guided       " P_shape"/" P_ctxt"  "P_shape"/"P_ctxt"  prompt
=================  =================  =================  ==========================

``context-aware`` is the paper's context-aware inpainting (fill from the surroundings
without removing a named object); the reference app serves it as its "image-outpainting"
tab, which is accepted here as an alias. The negative user prompt is passed through
unchanged for every task.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

TASKS = ("text-guided", "object-removal", "shape-guided", "context-aware")
_ALIASES = {"image-outpainting": "context-aware", "outpainting": "context-aware"}


@dataclass(frozen=True)
class TaskPrompts:
    """Everything a PowerPaint call needs to know about text, for one sample."""

    promptA: str
    promptB: str
    negative_promptA: str
    negative_promptB: str
    promptU: str
    negative_promptU: str
    tradoff: float = 1.0
    tradoff_nag: float = 1.0

    def as_kwargs(self) -> dict[str, Any]:
        return asdict(self)


def normalize_task(task: str) -> str:
    """Canonical task name, with a clear error for unknown ones."""
    name = str(task).strip().lower().replace("_", "-")
    name = _ALIASES.get(name, name)
    if name not in TASKS:
        raise ValueError(f"unknown PowerPaint task {task!r}; expected one of: {', '.join(TASKS)}")
    return name


def build_task_prompts(
    task: str, prompt: str = "", negative_prompt: str = "", fitting_degree: float = 1.0
) -> TaskPrompts:
    """The reference v2 prompts for ``task`` given the user's prompt and negative prompt.

    ``fitting_degree`` (in [0, 1]) is used for both blends, as in the reference app; it
    only changes the result for ``shape-guided``, where A and B differ (1 = follow the
    mask shape, 0 = follow the context).
    """
    task = normalize_task(task)
    t = float(fitting_degree)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"fitting_degree must be in [0, 1], got {fitting_degree}")
    prompt = prompt or ""
    negative_prompt = negative_prompt or ""
    if task == "object-removal":
        a = b = " P_ctxt"
        na = nb = " P_obj"
        user = prompt + " empty scene blur"
    elif task == "context-aware":
        a = b = " P_ctxt"
        na = nb = " P_obj"
        user = prompt + " empty scene"
    elif task == "shape-guided":
        a, b = " P_shape", " P_ctxt"
        na, nb = "P_shape", "P_ctxt"
        user = prompt
    else:  # text-guided
        a = b = " P_obj"
        na = nb = "P_obj"
        user = prompt
    return TaskPrompts(a, b, na, nb, user, negative_prompt, t, t)
