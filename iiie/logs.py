"""A run's log file and its progress bars.

``results/<experiment>/run.log`` sits next to the tables it explains: one INFO line per
stage (computed / cached / failed, seconds), the warnings of every library, and the error
that stopped a run. Hydra's job logging (``conf/hydra/job_logging/iiie.yaml``) sets the
levels and the console; the file itself is attached here, by :func:`run_log`, because its
folder (a sweep variant's, a shard's) is only known in Python, and because runs started
outside Hydra (tests, notebooks) must write it too.

Progress bars are for a person at a terminal: :func:`progress_enabled` turns them off when
stderr is not a TTY (``make reproduce > log.txt 2>&1``, CI), unless ``runtime.progress=true``
forces them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The project's logger (stage lines); its children are the modules' loggers.
log = logging.getLogger("iiie")
#: One line per record: time, level, logger, message.
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_NAME = "run.log"


def progress_enabled(setting: Any, stream: Any = None) -> bool:
    """``runtime.progress``: ``true`` forces the bars, ``false`` hides them, ``auto``
    (the default; also null) shows them only when ``stream`` (stderr) is a terminal, so a
    redirected log holds no bar frames."""
    if isinstance(setting, bool):
        return setting
    if setting is None or str(setting).lower() == "auto":
        stream = sys.stderr if stream is None else stream
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())
    text = str(setting).lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"runtime.progress={setting!r}: use true, false or auto")


def stage_line(name: str, c: Any, seconds: float | None = None) -> str:
    """The log line of one stage from its counters (:class:`~iiie.pipeline.runner.StageCounters`)."""
    secs = c.seconds if seconds is None else seconds
    line = f"stage {name}: {c.computed} computed, {c.cached} cached, {c.errors} failed"
    if c.failed_before:
        line += f", {c.failed_before} failed earlier"
    if c.skipped_upstream:
        line += f", {c.skipped_upstream} stopped upstream"
    return line + f", {secs:.2f} s"


@contextmanager
def run_log(out_dir: Path) -> Iterator[Path]:
    """Write ``out_dir/run.log`` (rewritten by each run, like the tables) while the block
    runs: every logger's records that pass its level, and the iiie logger at INFO even
    where nobody configured logging (tests, notebooks). An exception leaving the block is
    written to the file only; the console's one-line error is the CLI's job."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOG_NAME
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    old_level = log.level
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield path
    except BaseException as exc:
        record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "run stopped: %s: %s",
                                (type(exc).__name__, exc), sys.exc_info())
        handler.handle(record)
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
        log.setLevel(old_level)
