"""Does the one progress display draw a bar on a terminal and plain lines everywhere else?"""
from __future__ import annotations

import io

from cnncourse.progress import Progress


class FakeTTY(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class NoIsatty:
    """A stream without ``isatty`` (some notebook and logging wrappers)."""

    def __init__(self):
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


# --- not a terminal: plain lines ---------------------------------------------------------
def test_does_a_plain_stream_get_one_line_per_event_and_no_bar():
    stream = io.StringIO()
    progress = Progress(stream)
    assert not progress.tty
    progress.bar(0.5, "epoch 1/2", force=True)
    progress.event(1 / 2, "[1/2] alice: 9/10", bar_text="1/2 alice")
    progress.line("epoch  1/2  done")
    progress.event(2 / 2, "[2/2] bob: NOT GRADED: timeout")
    progress.clear()
    progress.close()
    assert stream.getvalue() == ("[1/2] alice: 9/10\nepoch  1/2  done\n"
                                 "[2/2] bob: NOT GRADED: timeout\n")
    assert "\r" not in stream.getvalue()


def test_does_a_line_go_to_the_stream_it_is_given():
    own, other = io.StringIO(), io.StringIO()
    Progress(own).line("epoch  1/3  train loss 0.500", stream=other)
    assert (own.getvalue(), other.getvalue()) == ("", "epoch  1/3  train loss 0.500\n")


def test_does_a_disabled_display_write_nothing_even_on_a_terminal():
    stream = FakeTTY()
    progress = Progress(stream, enabled=False)
    assert not progress.tty
    progress.bar(0.5, "half", force=True)
    progress.line("a line")
    progress.event(1.0, "an event")
    progress.clear()
    progress.close()
    assert stream.getvalue() == ""


def test_is_a_stream_without_isatty_taken_for_a_plain_one():
    stream = NoIsatty()
    progress = Progress(stream)
    assert not progress.tty
    progress.event(1.0, "[1/1] carol: 10/10")
    assert stream.text == "[1/1] carol: 10/10\n"


def test_is_the_default_stream_stderr_when_the_display_is_made(capsys):
    Progress().line("to stderr")
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "to stderr\n")


# --- a terminal: the bar -------------------------------------------------------------------
def test_is_the_bar_drawn_in_place_with_a_fixed_width():
    stream = FakeTTY()
    progress = Progress(stream, width=10)
    assert progress.tty
    progress.bar(0.0, "epoch 1/2")
    progress.bar(0.55, "epoch 2/2", force=True)
    progress.bar(1.0, force=True)
    assert stream.getvalue() == ("\r[          ] epoch 1/2"
                                 "\r[#####     ] epoch 2/2"
                                 "\r[##########]          ")  # the longer text is blanked


def test_are_redraws_throttled_unless_forced():
    stream = FakeTTY()
    progress = Progress(stream, width=4, interval=60.0)
    progress.bar(0.25, "first")
    progress.bar(0.5, "too soon")
    assert stream.getvalue() == "\r[#   ] first"
    progress.bar(0.75, "forced", force=True)
    assert stream.getvalue().endswith("\r[### ] forced")


def test_does_a_bar_stay_within_its_columns_and_its_width():
    stream = FakeTTY()
    progress = Progress(stream, width=4, columns=12)
    progress.bar(1.5, "a very long student name", force=True)  # fraction beyond 1: a full bar
    assert stream.getvalue() == "\r[####] a ver"
    progress.bar(-1.0, force=True)
    assert stream.getvalue().endswith("\r[    ]      ")


def test_does_a_line_blank_the_bar_before_it_is_printed():
    stream, out = FakeTTY(), io.StringIO()
    progress = Progress(stream, width=4, columns=20)
    progress.bar(0.5, "epoch 1/2")
    progress.line("epoch  1/2  train loss 0.100", stream=out)
    assert stream.getvalue() == "\r[##  ] epoch 1/2" + "\r" + " " * 20 + "\r"
    assert out.getvalue() == "epoch  1/2  train loss 0.100\n"
    progress.bar(0.75, "epoch 2/2", force=True)  # drawn afresh: nothing left to blank
    assert stream.getvalue().endswith("\r\r[### ] epoch 2/2")


def test_are_events_drawn_at_once_and_the_last_bar_kept_by_close():
    stream = FakeTTY()
    progress = Progress(stream, width=4, interval=60.0)
    progress.event(1 / 2, "[1/2] alice: 9/10", bar_text="1/2 alice: 9/10")
    progress.event(2 / 2, "[2/2] bob: 10/10", bar_text="2/2 bob: 10/10")
    progress.close()
    progress.close()  # nothing on screen any more: no second newline
    assert stream.getvalue() == ("\r[##  ] 1/2 alice: 9/10"
                                 "\r[####] 2/2 bob: 10/10 "
                                 "\n")


def test_does_close_write_nothing_when_no_bar_is_shown():
    stream = FakeTTY()
    progress = Progress(stream)
    progress.close()
    progress.bar(0.5, "x", force=True)
    progress.clear()
    progress.close()
    assert "\n" not in stream.getvalue()
