"""Short texts of the Restore dock: durations and progress lines."""

from __future__ import annotations

import re

from ..core.progress import Progress

STAGE_LABELS = {"prepare": "preparing", "train": "training", "predict": "restoring", "done": "done"}


def format_seconds(seconds: float | None) -> str:
    """1.23 -> '1.2 s', 12 -> '12 s', 125 -> '2:05', 3725 -> '1:02:05'."""
    if seconds is None:
        return "?"
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f} s"
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}:{s:02d}"
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


def format_progress(p: Progress) -> str:
    """One line for the progress label: stage, position, loss and time left."""
    parts = [STAGE_LABELS.get(p.stage, p.stage)]
    if p.stage == "prepare":
        return p.message or parts[0]
    if p.stage == "train":
        if p.done is not None:
            parts[0] += f" {100 * p.fraction:.0f}%"
        elif p.total:
            parts[0] += f" step {p.step}/{p.total}"
    elif p.stage == "predict" and p.total:
        parts[0] += f" {p.step}/{p.total} frames"
    if p.loss is not None:
        parts.append(f"loss {p.loss:.4g}")
    if p.eta is not None and p.stage != "done":
        parts.append(f"{format_seconds(p.eta)} left")
    return " · ".join(parts)


#: command-line advice in the core's messages, and what a GUI user does instead
CLI_WORDS = (
    (re.compile(r"[;,:]? *(?:choose another name )?or pass --overwrite"),
     ": choose another name (or move the existing one away first)"),
    (re.compile(r"run again with --overwrite to redo (?:it|them)"),
     "choose another name, or move the existing one away to redo it"),
    (re.compile(r" *\(not even with --overwrite\)"), ""),
)


def gui_words(text: str) -> str:
    """A core message in a dock's words: no command-line flags."""
    for pattern, words in CLI_WORDS:
        text = pattern.sub(words, text)
    return text
