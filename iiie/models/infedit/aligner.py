"""Token alignment between the source and target captions (InfEdit's "refinement mapper").

Cross-attention refinement needs, for every target token, the source token whose attention
map it should borrow (``mapper``) and whether it has one (``alphas``). Local blending needs
which target tokens are the ``local`` word(s) (edited region) and the ``mutual`` word(s)
(region kept from the source). This module computes all of them from token ids, following
the reference (InfEdit ``seq_aligner.get_mapper`` at commit 87bdcc6) rule by rule, because
the local-blend masks and the refined attention depend on every detail:

1. a global alignment of the unpadded token ids (gap 0, match +1, mismatch -1), with the
   reference's tie order (left, then up, then diagonal) when tracing back;
2. unaligned target tokens get ``alpha = 0`` and ``mapper = -1``; past the target length
   the mapper is the identity;
3. inside each gap of unaligned target tokens, the best cosine match between text-encoder
   states may re-attach one target token to a source token of the same gap (the reference
   compares the *source* encoding at the target index with the *target* encoding at the
   source index; kept as is, it decides which token is re-attached);
4. ``alpha_e`` marks the local word tokens in the target (also a re-attached token whose
   source token is a local-word token); ``alpha_m`` marks mutual word tokens, which must
   appear in the target aligned to the same token in the source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MAX_LEN = 77


class AlignmentError(ValueError):
    """A mutual word that is not shared (and aligned) by the two captions."""


@dataclass
class TokenAlignment:
    """Per-target-token data for one (source, target) caption pair, each of length 77."""

    mapper: torch.Tensor  # int64: source column for each target token (-1: none)
    alphas: torch.Tensor  # float: 1 where the target token borrows a source map
    alpha_e: torch.Tensor  # float: local (edited) word tokens in the target
    alpha_m: torch.Tensor  # float: mutual word tokens in the target
    target_len: int  # number of target tokens with BOS and EOS
    warnings: tuple[str, ...] = ()

    @property
    def alpha_me(self) -> torch.Tensor:
        """Tokens that are both local and mutual."""
        return (self.alpha_e.bool() & self.alpha_m.bool()).to(self.alpha_e.dtype)


def global_align(x: Sequence[int], y: Sequence[int]) -> np.ndarray:
    """Needleman-Wunsch traceback matrix (1 left, 2 up, 3 diagonal, 4 origin)."""
    gap, match, mismatch = 0, 1, -1
    n, m = len(x), len(y)
    score = np.zeros((n + 1, m + 1), dtype=np.int64)
    score[0, 1:] = np.arange(1, m + 1) * gap
    score[1:, 0] = np.arange(1, n + 1) * gap
    trace = np.zeros((n + 1, m + 1), dtype=np.int64)
    trace[0, 1:] = 1
    trace[1:, 0] = 2
    trace[0, 0] = 4
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            left = score[i, j - 1] + gap
            up = score[i - 1, j] + gap
            diag = score[i - 1, j - 1] + (match if x[i - 1] == y[j - 1] else mismatch)
            best = max(left, up, diag)
            score[i, j] = best
            trace[i, j] = 1 if best == left else (2 if best == up else 3)
    return trace


def target_to_source(x: Sequence[int], y: Sequence[int]) -> list[int]:
    """For each target token, the aligned source index or -1 (from the traceback)."""
    trace = global_align(x, y)
    i, j = len(x), len(y)
    pairs: list[int] = []
    while i > 0 or j > 0:
        move = trace[i, j]
        if move == 3:
            i, j = i - 1, j - 1
            pairs.append(i)
        elif move == 1:
            j -= 1
            pairs.append(-1)
        elif move == 2:
            i -= 1
        else:
            break
    pairs.reverse()
    return pairs


def align_tokens(
    source_ids: Sequence[int],
    target_ids: Sequence[int],
    local_ids: Sequence[int],
    mutual_ids: Sequence[int],
    source_states: torch.Tensor,
    target_states: torch.Tensor,
    max_len: int = MAX_LEN,
) -> TokenAlignment:
    """Compute the mapper, alphas and word masks from unpadded ids (with BOS/EOS).

    ``source_states``/``target_states`` are the text-encoder outputs (max_len, dim) of the
    padded captions, used only to re-attach unaligned target tokens.
    """
    x, y = list(source_ids), list(target_ids)
    e, m = list(local_ids), list(mutual_ids)
    if len(y) > max_len:
        raise ValueError(f"target caption has {len(y)} tokens, more than {max_len}")
    base = target_to_source(x, y)
    alphas = torch.ones(max_len)
    alphas[: len(base)] = torch.tensor([float(b != -1) for b in base])
    mapper = torch.zeros(max_len, dtype=torch.int64)
    mapper[: len(base)] = torch.tensor(base, dtype=torch.int64)
    mapper[len(base):] = len(y) + torch.arange(max_len - len(y))
    alpha_e = torch.zeros(max_len)
    alpha_m = torch.zeros(max_len)
    warnings: list[str] = []

    # 3. re-attach one token per gap of unaligned target tokens
    i = 0
    while i < len(y):
        if alphas[i] == 0:
            start = i
            while alphas[i] == 0:
                i += 1
            best, best_s, best_t = float("-inf"), None, None
            for i_t in range(start, i):
                for i_s in range(int(mapper[start - 1]) + 1, int(mapper[i])):
                    sim = F.cosine_similarity(source_states[i_t], target_states[i_s], dim=0)
                    if sim > best:
                        best, best_s, best_t = sim, i_s, i_t
            if best_s is not None:
                mapper[best_t] = best_s
                alphas[best_t] = 1
                if x[best_s] in e:
                    alpha_e[best_t] = 1
        i += 1

    # 4a. local word(s): scan the target left to right for each local token in turn
    i, j = 1, 1
    while i < len(y) - 1 and j < len(e) - 1:
        found = True
        while e[j] != y[i]:
            i += 1
            if i >= len(y) - 1:
                found = False
                warnings.append("local word not found in the target caption")
                break
        if found:
            alpha_e[i] = 1
        j += 1

    # 4b. mutual word(s): must be in the target and aligned to the same source token
    i, j = 1, 1
    while i < len(y) - 1 and j < len(m) - 1:
        while m[j] != y[i]:
            i += 1
            if i >= len(y):
                raise AlignmentError("mutual word not found in the target caption")
        if m[j] == x[int(mapper[i])]:
            alpha_m[i] = 1
            j += 1
        else:
            raise AlignmentError("mutual word is not shared by the source and target captions")
    return TokenAlignment(mapper, alphas, alpha_e, alpha_m, len(y), tuple(warnings))


def align_captions(
    tokenizer,
    encode: Callable[[torch.Tensor], torch.Tensor],
    source: str,
    target: str,
    local: str = "",
    mutual: str = "",
) -> TokenAlignment:
    """Tokenize the captions and words, encode the padded captions, and align.

    ``encode`` maps padded ids (1, 77) to the text encoder's last hidden state (1, 77, dim).
    """
    def ids(text: str) -> list[int]:
        return list(tokenizer(text)["input_ids"])

    def padded(text: str) -> torch.Tensor:
        return tokenizer(
            text, padding="max_length", max_length=MAX_LEN, truncation=True, return_tensors="pt"
        ).input_ids

    with torch.no_grad():
        xs = encode(padded(source))[0].float().cpu()
        ys = encode(padded(target))[0].float().cpu()
    return align_tokens(ids(source), ids(target), ids(local), ids(mutual), xs, ys)
