"""``--executor local``: every task in this process, one after another, in task order."""

from __future__ import annotations

from typing import Any

from .base import Executor, Task, invoke


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, workers: int = 1) -> None:
        super().__init__(1)
        self._done: dict[int, tuple[bool, Any, float, bool]] = {}
        self._next = 0

    def _submit(self, task: Task) -> Any:
        self._next += 1
        self._done[self._next] = invoke(task.fn, task.args)
        return self._next

    def _wait(self, handles: list[Any]) -> list[tuple[Any, tuple[bool, Any, float, bool]]]:
        return [(h, self._done.pop(h)) for h in handles]
