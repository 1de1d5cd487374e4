"""Exceptions with messages meant for the person running the pipeline.

A per-sample error (bad image, empty instruction) is recorded in the run and the run goes
on; configuration errors (missing weights, server down) stop the run at once.
"""

from __future__ import annotations


class IIIEError(Exception):
    """Base class for errors iiie raises on purpose."""


class SampleError(IIIEError):
    """Something wrong with one sample; the run records it and continues."""


class ImageLoadError(SampleError):
    """An image that cannot be read or normalised (corrupt, truncated, unsupported)."""


class InstructionError(SampleError):
    """An instruction that is empty, too long, or cannot be parsed into a plan."""


class BackendUnavailableError(IIIEError):
    """A required service or model is not there (VLM server down, wrong model name)."""
