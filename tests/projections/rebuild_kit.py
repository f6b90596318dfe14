"""A worker recipe of a split rebuild that fails in the worker owning one aggregate (tests).

Importable by name in the spawned worker processes (this folder is on ``sys.path``, which
``multiprocessing`` hands to the processes it spawns), so it pickles by reference."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from application.projections.projector import Projector


@dataclass(frozen=True)
class FailingWorker:
    """Builds the real runner with ``recipe``; the worker whose share holds ``victim`` fails at the
    ``at``-th batch with one of its events: raises (``how="raise"``) or is killed (``"kill"``)."""

    recipe: Callable[[], Any]
    victim: uuid.UUID
    how: str
    at: int = 2

    def __call__(self) -> Any:
        runner = self.recipe()
        original, victim, how, at = Projector.process, self.victim, self.how, self.at
        seen = [0]

        def process(projector: Projector, batch: Any, source: Any) -> Any:
            if any(getattr(event, "originator_id", None) == victim for _, event in batch):
                seen[0] += 1
                if seen[0] == at:
                    if how == "kill":
                        os.kill(os.getpid(), signal.SIGKILL)
                    raise RuntimeError("injected")
            return original(projector, batch, source)

        Projector.process = process  # type: ignore[method-assign]  # in this worker process only
        return runner
