"""PowerPaint's learned task tokens: tokenization and the embedding that substitutes them.

PowerPaint v2 conditions its BrushNet branch on a second CLIP text encoder
(``text_encoder_brushnet``) that knows three extra words, ``P_ctxt``, ``P_shape`` and
``P_obj``. Each word stands for :data:`NUM_VECTORS` learned vectors. The reference code
does this by (1) rewriting ``"P_obj"`` in the text into ``"P_obj_0 ... P_obj_9"``, which
the tokenizer knows as added tokens with ids ``len(vocab) + 0..29`` (in the order
``P_ctxt``, ``P_shape``, ``P_obj``), and (2) wrapping the token embedding so that those ids
are looked up as id 0 and then overwritten by the learned vectors.

Here the tokenizer is left untouched: :class:`TaskTokenizer` splits the text at the task
words, tokenizes the plain pieces with the ordinary CLIP tokenizer and inserts the ten ids
of each task word itself. That gives the same ids as the reference (checked against the
golden ``input_ids``) without mutating a shared tokenizer, and the base text encoder, fed by
the plain tokenizer, can never receive a task id.

:class:`TaskTokenEmbedding` keeps the reference's parameter names (``wrapped.weight``,
``trainable_embeddings.<name>``) so the official ``pytorch_model.bin`` loads strictly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

TASK_TOKENS: tuple[str, ...] = ("P_ctxt", "P_shape", "P_obj")
"""The task words, in the order their ids were added (this fixes the id ranges)."""

NUM_VECTORS = 10
"""Learned vectors (and so token ids) per task word in PowerPaint v2."""

_TASK_RE = re.compile("(" + "|".join(re.escape(t) for t in TASK_TOKENS) + ")")


class TaskTokenizer:
    """CLIP tokenization with the task words expanded into their ``NUM_VECTORS`` ids each.

    ``first_task_id`` is where the added ids start; PowerPaint appends them right after the
    tokenizer's vocabulary, so it defaults to ``len(tokenizer)``.
    """

    def __init__(
        self,
        tokenizer,
        first_task_id: int | None = None,
        task_tokens: Sequence[str] = TASK_TOKENS,
        num_vectors: int = NUM_VECTORS,
    ) -> None:
        self.tokenizer = tokenizer
        self.task_tokens = tuple(task_tokens)
        self.num_vectors = int(num_vectors)
        self.first_task_id = int(len(tokenizer) if first_task_id is None else first_task_id)
        self.model_max_length = int(tokenizer.model_max_length)
        if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
            raise ValueError("the CLIP tokenizer needs BOS and EOS tokens")
        self.pad_token_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )

    @property
    def num_task_ids(self) -> int:
        return len(self.task_tokens) * self.num_vectors

    def task_ids(self, word: str) -> list[int]:
        """The ``num_vectors`` consecutive ids that stand for one task word."""
        k = self.task_tokens.index(word)
        start = self.first_task_id + k * self.num_vectors
        return list(range(start, start + self.num_vectors))

    def content_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without BOS/EOS, task words expanded."""
        ids: list[int] = []
        for piece in _TASK_RE.split(text):
            if not piece:
                continue
            if piece in self.task_tokens:
                ids.extend(self.task_ids(piece))
            else:
                ids.extend(self.tokenizer(piece, add_special_tokens=False).input_ids)
        return ids

    def __call__(self, texts: str | Sequence[str], max_length: int | None = None) -> torch.Tensor:
        """``(B, max_length)`` int64 ids: BOS, content truncated, EOS, padding.

        Truncation follows CLIP's (content cut to ``max_length - 2``). Cutting through the
        middle of a task word's ids would make an embedding the model never saw, so that
        raises instead.
        """
        if isinstance(texts, str):
            texts = [texts]
        length = int(max_length or self.model_max_length)
        rows = []
        for text in texts:
            content = self.content_ids(text)
            kept = content[: length - 2]
            if len(kept) < len(content):
                self._check_cut(kept, text)
            row = [self.tokenizer.bos_token_id, *kept, self.tokenizer.eos_token_id]
            row += [self.pad_token_id] * (length - len(row))
            rows.append(row)
        return torch.tensor(rows, dtype=torch.long)

    def _check_cut(self, kept: list[int], text: str) -> None:
        # Task ids come in complete consecutive groups, so a group was cut exactly when the
        # last kept id is a task id other than its group's last one.
        lo, hi = self.first_task_id, self.first_task_id + self.num_task_ids
        last = kept[-1] if kept else None
        if last is not None and lo <= last < hi and (last - lo) % self.num_vectors != self.num_vectors - 1:
            raise ValueError(
                f"prompt {text!r} is too long: truncation to {self.model_max_length} tokens "
                "cuts through a task token's vectors; shorten the prompt"
            )


class TaskTokenEmbedding(nn.Module):
    """Token embedding that maps task ids onto learned vectors.

    Ordinary ids go through ``wrapped`` (the CLIP ``nn.Embedding``); ids from
    ``first_task_id`` on index the concatenation of ``trainable_embeddings`` in
    :data:`TASK_TOKENS` order. Parameter names match the official checkpoint.
    """

    def __init__(
        self,
        wrapped: nn.Embedding,
        first_task_id: int | None = None,
        task_tokens: Sequence[str] = TASK_TOKENS,
        num_vectors: int = NUM_VECTORS,
    ) -> None:
        super().__init__()
        self.wrapped = wrapped
        self.task_tokens = tuple(task_tokens)
        self.num_vectors = int(num_vectors)
        dim = wrapped.weight.shape[1]
        self.first_task_id = int(wrapped.num_embeddings if first_task_id is None else first_task_id)
        if self.first_task_id < wrapped.num_embeddings:
            raise ValueError(
                f"task ids start at {self.first_task_id}, inside the vocabulary of "
                f"{wrapped.num_embeddings} ids"
            )
        w = wrapped.weight
        self.trainable_embeddings = nn.ParameterDict(
            {
                name: nn.Parameter(torch.zeros(self.num_vectors, dim, dtype=w.dtype, device=w.device))
                for name in self.task_tokens
            }
        )

    @property
    def weight(self) -> torch.Tensor:
        return self.wrapped.weight

    @property
    def num_embeddings(self) -> int:
        return self.wrapped.num_embeddings

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        n_base = self.wrapped.num_embeddings
        added = input_ids >= n_base
        # Like the reference: ids outside the vocabulary are looked up as id 0 first.
        embeds = self.wrapped(input_ids.masked_fill(added, 0))
        if not bool(added.any()):
            return embeds
        table = torch.cat([self.trainable_embeddings[n] for n in self.task_tokens], dim=0)
        offset = input_ids - self.first_task_id
        bad = added & ((offset < 0) | (offset >= table.shape[0]))
        if bool(bad.any()):
            raise ValueError(
                f"token ids {sorted(set(input_ids[bad].tolist()))} are neither in the vocabulary "
                f"(< {n_base}) nor task ids ({self.first_task_id}..{self.first_task_id + table.shape[0] - 1})"
            )
        task = table[offset.clamp(0, table.shape[0] - 1)].to(embeds.dtype)
        return torch.where(added[..., None], task, embeds)
