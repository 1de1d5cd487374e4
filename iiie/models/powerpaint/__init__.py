"""PowerPaint v2 (Zhuang et al. 2024, "A Task is Worth One Word") on the BrushNet code.

* :mod:`~iiie.models.powerpaint.task_tokens` — ``P_ctxt``/``P_shape``/``P_obj`` expanded
  into 10 ids each (:class:`TaskTokenizer`) and the embedding that substitutes the learned
  vectors (:class:`TaskTokenEmbedding`);
* :mod:`~iiie.models.powerpaint.text_encoder` — ``text_encoder_brushnet`` from the official
  ``pytorch_model.bin`` (``weights_only``) or its safetensors copy, strict keys;
* :mod:`~iiie.models.powerpaint.prompts` — the reference v2 prompts per task;
* :mod:`~iiie.models.powerpaint.loading` — the BrushNet-CA branch, strict keys;
* :mod:`~iiie.models.powerpaint.pipeline` — :class:`PowerPaintPipeline`, a subclass of the
  BrushNet pipeline that only changes the branch's text.
"""

from iiie.models.powerpaint.prompts import TASKS, TaskPrompts, build_task_prompts
from iiie.models.powerpaint.task_tokens import TASK_TOKENS, TaskTokenEmbedding, TaskTokenizer

__all__ = ["TASKS", "TASK_TOKENS", "TaskPrompts", "TaskTokenEmbedding", "TaskTokenizer", "build_task_prompts"]
