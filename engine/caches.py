"""Every in-memory cache of the engine, registered here so that one call forgets them all.

A server process keeps parsed process versions, compiled expressions and form validators in memory; a freshly
started process has none of them. Tests that must behave like a cold process (a step taken by another server, or
after a restart) call :func:`clear_all` between steps, and so does anything that must prove a cache changes nothing.
A module that adds a cache registers its clearing function with :func:`register`.
"""
from __future__ import annotations

from collections.abc import Callable

_clearers: list[Callable[[], None]] = []


def register(clear: Callable[[], None]) -> Callable[[], None]:
    """Remember ``clear`` (a function that empties one cache); returns it, so it can decorate."""
    _clearers.append(clear)
    return clear


def clear_all() -> None:
    """Forget everything cached in this process, as if it had just started."""
    for clear in _clearers:
        clear()
