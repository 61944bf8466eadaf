"""One progress display for the project: the trainer's epochs and the autograder's submissions.

On a terminal a bar is redrawn in place: a carriage return, a bar of fixed ``width``, the line
cut to ``columns`` so that it never wraps, at most one redraw per ``interval`` seconds. Anywhere
else (a notebook, a CI log, a pipe) nothing is redrawn and each event is one plain line.
Whether the stream is a terminal is asked once, when the display is made::

    progress = Progress()                        # on sys.stderr
    progress.bar(step / steps, f"epoch {e}/{n}")  # during an epoch: terminals only
    progress.line(summary, stream=sys.stdout)     # after it: everywhere
    progress.event(done / total, f"[{done}/{total}] {who}: {score}")  # one finished item
"""
from __future__ import annotations

import math
import sys
import time
from typing import TextIO

__all__ = ["Progress"]


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


class Progress:
    """A bar redrawn in place on a terminal; one plain line per event anywhere else.

    ``stream``: where everything goes, unless ``line`` is given another (default: ``sys.stderr``
    when the display is made). ``enabled=False``: every method does nothing. ``tty``: True when
    the bar is drawn (enabled, on a terminal).
    """

    def __init__(self, stream: TextIO | None = None, enabled: bool = True, *, width: int = 30,
                 columns: int = 100, interval: float = 0.2):
        self.stream = sys.stderr if stream is None else stream
        self.enabled, self.width, self.columns, self.interval = enabled, width, columns, interval
        self.tty = enabled and _isatty(self.stream)
        self._last = -math.inf  # when the bar was last drawn (time.perf_counter)
        self._shown = 0  # characters of the bar now on screen, blanked by the next draw

    def bar(self, fraction: float, text: str = "", *, force: bool = False) -> None:
        """On a terminal, redraw the bar at ``fraction`` (0 to 1) with ``text`` beside it."""
        if not self.tty:
            return
        now = time.perf_counter()
        if not force and now - self._last <= self.interval:
            return
        self._last = now
        filled = min(max(int(self.width * fraction), 0), self.width)
        drawn = f"[{'#' * filled:<{self.width}}]" + (f" {text}" if text else "")
        drawn = drawn[:self.columns]
        self.stream.write("\r" + drawn.ljust(self._shown))
        self.stream.flush()
        self._shown = len(drawn)

    def line(self, text: str, stream: TextIO | None = None) -> None:
        """Print ``text`` as one line to ``stream`` (default: the display's), the bar blanked."""
        if not self.enabled:
            return
        if self.tty:
            self.clear()
        print(text, file=self.stream if stream is None else stream, flush=True)

    def event(self, fraction: float, text: str, bar_text: str | None = None) -> None:
        """One finished item: the bar with ``bar_text`` (default ``text``), or the line ``text``."""
        if not self.enabled:
            return
        if self.tty:
            self.bar(fraction, text if bar_text is None else bar_text, force=True)
        else:
            self.line(text)

    def clear(self) -> None:
        """On a terminal, blank the bar's line and return to its start."""
        if self.tty:
            self.stream.write("\r" + " " * self.columns + "\r")
            self.stream.flush()
            self._shown = 0

    def close(self) -> None:
        """On a terminal, end the line of a bar on screen, which stays there."""
        if self.tty and self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = 0
