"""Exceptions with messages meant for the person running the pipeline.

A per-sample error (bad image, empty instruction) is recorded in the run and the run goes
on; configuration errors (missing weights, server down) stop the run at once.
"""

from __future__ import annotations

#: The one GPU install command every hint names (README "Install"): vLLM pins its own torch,
#: so the GPU path uses requirements/constraints-gpu.txt, never the CPU constraints file.
GPU_INSTALL = "pip install -c requirements/constraints-gpu.txt -e '.[gpu]' (or `make install-gpu`)"


class IIIEError(Exception):
    """Base class for errors iiie raises on purpose."""


class SampleError(IIIEError):
    """Something wrong with one sample; the run records it and continues."""


class ImageLoadError(SampleError):
    """An image that cannot be read or normalised (corrupt, truncated, unsupported)."""


class InstructionError(SampleError):
    """An instruction that is empty, too long, or cannot be parsed into a plan."""


class PreviousTurnMissingError(SampleError):
    """A multi-turn sample whose previous turn has no edited image yet. Retryable: once
    the previous turn succeeds (a re-run after an outage), this turn can run."""

    retryable = True


class TransientBackendError(IIIEError):
    """A backend call that failed for reasons outside the sample: a VLM timeout, a refused
    connection, a 5xx storm after the client's own retries, a server restarting.

    Not a result: the runner records it as a *retryable* per-sample error, which the next
    run recomputes by default (never a cached plan, mask, edit or vote). A batch method
    may return an instance of it in place of one sample's result, so one lost request
    does not fail the whole batch."""


class ConfigurationError(IIIEError):
    """The run cannot go on as configured: the runner stops at once instead of recording
    the same failure against every sample."""


class DeviceError(ConfigurationError):
    """The accelerator ran out of memory even at batch size 1, or reported a CUDA error:
    not the sample's fault, so nothing is recorded against it; the message names the
    setting to change (batch size, offload, dtype, resolution)."""


class BackendUnavailableError(ConfigurationError):
    """A required service or model is not there (VLM server down, wrong model name)."""


class IncompatibleComponentsError(ConfigurationError):
    """Two configured components that cannot work together (``masker=vlm_box`` fed plans
    from a planner that gives no boxes)."""


class DatasetNotFoundError(ConfigurationError, FileNotFoundError):
    """A dataset folder or index file that the config points at is not on disk.

    Also a :class:`FileNotFoundError`, so code that caught the loaders' old error still
    does; the message names ``data.root`` and ``paths.data`` so the fix is a config edit.
    """

    @classmethod
    def for_root(cls, benchmark: str, problem: str) -> DatasetNotFoundError:
        """``<benchmark>: <problem>.`` plus how to point ``data.root`` at a local copy."""
        return cls(
            f"{benchmark}: {problem}. Point `data.root` at your local copy "
            f"(data={benchmark} defaults it to `${{paths.data}}/{benchmark}`; `paths.data` "
            "comes from env IIIE_DATA, else ./data). See docs/EVALUATION.md."
        )
