"""Progress lines on a terminal, silence otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    """Prints ``[k/n] step...`` and its duration to ``stream`` when it is a terminal.

    Parameters
    ----------
    n_steps : int
    stream : file, default=sys.stderr
    enabled : bool, default=None
        None: only when ``stream`` is a terminal.
    """

    def __init__(self, n_steps: int, stream=None, enabled: bool | None = None):
        self.n_steps = n_steps
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = enabled
        self._step = 0

    def step(self, message: str) -> _Step:
        self._step += 1
        return _Step(self, f"[{self._step}/{self.n_steps}] {message}")


class _Step:
    def __init__(self, progress: Progress, message: str):
        self.progress = progress
        self.message = message

    def __enter__(self):
        self.start = time.perf_counter()
        if self.progress.enabled:
            print(f"{self.message} ...", file=self.progress.stream, flush=True)
        return self

    def __exit__(self, *exc):
        if self.progress.enabled and exc[0] is None:
            seconds = time.perf_counter() - self.start
            print(
                f"{self.message}: done in {seconds:.1f} s",
                file=self.progress.stream,
                flush=True,
            )
        return False
