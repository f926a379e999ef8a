"""A readable diff between two policy texts, line by line with changed words marked.

Japanese has no spaces between words, so inside a changed line the comparison is by
character; the template marks removals and additions with <del>/<ins> and a sign, so the
change does not depend on colour alone.
"""

import difflib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Segment:
    text: str
    changed: bool


@dataclass(frozen=True)
class DiffLine:
    op: str  # "same", "removed" or "added"
    segments: list[Segment] = field(default_factory=list)

    @property
    def sign(self) -> str:
        return {"same": " ", "removed": "−", "added": "+"}[self.op]


@dataclass(frozen=True)
class Diff:
    lines: list[DiffLine]

    @property
    def added(self) -> int:
        return sum(1 for line in self.lines if line.op == "added")

    @property
    def removed(self) -> int:
        return sum(1 for line in self.lines if line.op == "removed")

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.removed)


def _inline(old: str, new: str) -> tuple[list[Segment], list[Segment]]:
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    before: list[Segment] = []
    after: list[Segment] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            before.append(Segment(old[i1:i2], False))
            after.append(Segment(new[j1:j2], False))
            continue
        if i2 > i1:
            before.append(Segment(old[i1:i2], True))
        if j2 > j1:
            after.append(Segment(new[j1:j2], True))
    return before, after


def text_diff(old: str, new: str) -> Diff:
    old_lines, new_lines = old.split("\n"), new.split("\n")
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    lines: list[DiffLine] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            lines += [DiffLine("same", [Segment(text, False)]) for text in old_lines[i1:i2]]
            continue
        removed, added = old_lines[i1:i2], new_lines[j1:j2]
        if op == "replace" and len(removed) == len(added):
            pairs = [_inline(a, b) for a, b in zip(removed, added, strict=True)]
            lines += [DiffLine("removed", before) for before, _ in pairs]
            lines += [DiffLine("added", after) for _, after in pairs]
            continue
        lines += [DiffLine("removed", [Segment(text, True)]) for text in removed]
        lines += [DiffLine("added", [Segment(text, True)]) for text in added]
    return Diff(lines)
