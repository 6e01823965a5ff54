"""Errors of the local stack launcher."""


class StartError(Exception):
    """One part of the stack failed to start: which part, why, and the tail of its log."""

    def __init__(self, part: str, why: str, log_tail: str = "") -> None:
        self.part, self.why, self.log_tail = part, why, log_tail
        tail = f"\n--- last lines of the {part} log ---\n{log_tail}" if log_tail else ""
        super().__init__(f"{part} failed to start: {why}{tail}")
