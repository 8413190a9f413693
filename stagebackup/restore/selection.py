"""Which members a restore takes: everything, or the paths and globs the operator chose.

Member names are the catalog's (relative, no leading slash). A pattern selects a member when it matches
the member's path or the path of one of its folders, so choosing a folder restores all of it. Patterns
are shell globs matched case-sensitively on whole paths (``*`` also crosses ``/``); a leading ``/`` is
ignored so an operator can type the original absolute path.
"""

from __future__ import annotations

import fnmatch
import os
import re

from ..errors import N_, ValidationError
from ..paths import display

WILDCARDS = re.compile(r"[*?\[]")
MAX_PATTERNS = 10_000


def normalize_pattern(raw: str) -> str:
    if "\0" in raw:
        raise ValidationError(N_("a path contains a NUL character"), field="path")
    pattern = raw.strip("\n")
    while pattern.startswith("./"):
        pattern = pattern[2:]
    pattern = pattern.strip("/")
    if not pattern:
        raise ValidationError(N_("an empty path was given: leave out --path to restore everything"), field="path")
    if ".." in pattern.split("/"):
        raise ValidationError(N_("path %(path)s contains '..'"), field="path", path=display(raw))
    return pattern


class Selection:
    def __init__(self, patterns: list[str] | None = None):
        patterns = [normalize_pattern(p) for p in (patterns or [])]
        if len(patterns) > MAX_PATTERNS:
            raise ValidationError(N_("more than %(n)s paths selected: choose folders instead"), field="path",
                                  n=MAX_PATTERNS)
        self.patterns = patterns
        self._literal = {p for p in patterns if not WILDCARDS.search(p)}
        globs = [p for p in patterns if WILDCARDS.search(p)]
        self._glob = re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs), re.S) if globs else None

    @property
    def everything(self) -> bool:
        return not self.patterns

    def literal_paths(self) -> list[str] | None:
        """The chosen paths when none is a glob (each selects itself and all below it); None otherwise."""
        return None if self._glob is not None else sorted(self._literal)

    def __call__(self, name: str | bytes) -> bool:
        if not self.patterns:
            return True
        path = os.fsdecode(name).strip("/")
        while path.startswith("./"):
            path = path[2:]
        # The member itself, then each of its folders, longest first.
        candidate = path
        while True:
            if candidate in self._literal or (self._glob is not None and self._glob.match(candidate)):
                return True
            cut = candidate.rfind("/")
            if cut < 0:
                return False
            candidate = candidate[:cut]
