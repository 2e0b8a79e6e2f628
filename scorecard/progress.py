"""Progress on the terminal (rich), or nothing (tests)."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress


class Progress:
    """A thin wrapper: rows call task() and advance(); quiet when no rich display is wanted."""

    def __init__(self, display: RichProgress | None = None) -> None:
        self._display = display

    @classmethod
    def rich(cls) -> RichProgress:
        return RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )

    def task(self, description: str, total: int) -> Any:
        return self._display.add_task(description, total=total) if self._display is not None else None

    def advance(self, task: Any, amount: int = 1) -> None:
        if self._display is not None and task is not None:
            self._display.advance(task, amount)

    def log(self, message: str) -> None:
        if self._display is not None:
            self._display.console.log(message)
