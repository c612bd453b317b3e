"""Progress lines on a terminal, silence otherwise."""

from __future__ import annotations

import contextlib
import sys
import time


class Progress:
    """Prints ``[k/n] step...`` and its duration to ``stream`` when it is a terminal.

    Inside a step, what the work prints on standard output (an estimator's
    ``verbose`` lines: each stage and fold as it ends) goes to ``stream`` too,
    so that the command's own output stays clean. Commands pass
    ``verbose=progress.verbose`` to the estimators they fit.

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

    @property
    def verbose(self) -> int:
        """The ``verbose`` to give estimators: 1 where progress is shown."""
        return int(self.enabled)

    def step(self, message: str) -> _Step:
        self._step += 1
        return _Step(self, f"[{self._step}/{self.n_steps}] {message}")


class _Step:
    def __init__(self, progress: Progress, message: str):
        self.progress = progress
        self.message = message

    def __enter__(self):
        self.start = time.perf_counter()
        self._redirect = contextlib.nullcontext()
        if self.progress.enabled:
            print(f"{self.message} ...", file=self.progress.stream, flush=True)
            self._redirect = contextlib.redirect_stdout(self.progress.stream)
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc):
        self._redirect.__exit__(*exc)
        if self.progress.enabled and exc[0] is None:
            seconds = time.perf_counter() - self.start
            print(
                f"{self.message}: done in {seconds:.1f} s",
                file=self.progress.stream,
                flush=True,
            )
        return False
