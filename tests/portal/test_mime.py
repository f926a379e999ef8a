"""portal/shared/mime.py: the outbox's email written as Django writes it, but the boundary's
form, with the standard library's costs taken out."""

import email
import email.policy
import random
import re
import string

import pytest
from django.core.mail import EmailMultiAlternatives

from portal.shared.mime import UNFOLDED, OutgoingEmail

SUBJECTS = [
    "個人データに関する請求 R-261206-160E8360BB（削除）へのご回答のお願い",
    "Your request R-261206-160E8360BB (deletion) was received",
    "A subject long enough in plain ASCII that it has to be folded over two lines at least, "
    "and then some more words",
    "short",
]
NAMES = ["個人情報ポータル <noreply@example.jp>", "portal@example.jp", 'Ｏ\'Brien & "Co" <x@y.jp>']


def _pair(subject: str, from_email: str, cc: list[str]) -> tuple[bytes, bytes]:
    made = []
    for kind in (EmailMultiAlternatives, OutgoingEmail):
        mail = kind(
            subject=subject,
            body="本文 line one\n\nline two with a long tail " + "長い" * 400 + "\n",
            from_email=from_email,
            to=["privacy-038@bench.example.jp"],
            cc=cc,
            headers={"Message-ID": "<fixed@example.jp>", "Date": "Sun, 06 Dec 2026 10:55:26 -0000"},
        )
        mail.attach_alternative("<p>本文</p><p>" + "長い" * 400 + "</p>", "text/html")
        made.append(mail.message().as_bytes(linesep="\r\n"))
    return made[0], made[1]


def _boundaries(raw: bytes) -> list[bytes]:
    return re.findall(rb'boundary="([^"]+)"', raw)


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("from_email", NAMES)
@pytest.mark.parametrize("cc", [[], ["a@example.jp", "b@example.jp", "c@example.jp"] * 4])
def test_the_same_bytes_as_django_but_the_boundary(subject, from_email, cc):
    django_bytes, ours = _pair(subject, from_email, cc)
    [theirs], [mine] = _boundaries(django_bytes), _boundaries(ours)
    assert mine.startswith(b"=_") and len(mine) == 34
    assert ours.count(mine) == 4  # the header's, the two parts', the end
    # Long headers (the Cc, a Japanese subject) are still folded, as Django folds them.
    assert ours.replace(mine, theirs) == django_bytes
    parsed = email.message_from_bytes(ours, policy=email.policy.default)
    assert parsed["Subject"].strip() == subject  # Django folds a long one after "Subject:"
    text, html = (part.get_content() for part in parsed.iter_parts())
    assert text.startswith("本文") and html.startswith("<p>本文</p>")


def test_a_boundary_found_in_a_part_is_drawn_again(monkeypatch):
    draws = iter(["a" * 32, "b" * 32])
    monkeypatch.setattr("portal.shared.mime.secrets.token_hex", lambda _n: next(draws))
    mail = OutgoingEmail(subject="s", body="text =_" + "a" * 32, to=["x@example.jp"])
    mail.attach_alternative("<p>html</p>", "text/html")
    assert _boundaries(mail.message().as_bytes()) == [b"=_" + b"b" * 32]


def test_a_header_is_written_unfolded_only_where_the_standard_library_leaves_it_so():
    """Random values, control characters among them (str.splitlines() breaks a value at
    \\x0b, \\x0c, \\x1c-\\x1e): UNFOLDED writes each as compat32 does."""
    standard = email.policy.compat32.clone(linesep="\r\n")
    ours = UNFOLDED.clone(linesep="\r\n")
    rng = random.Random(2019)
    alphabet = string.printable + "\x0b\x0c\x1c\x1d\x1e\x00\x7f  ;;,,==??"
    written_as_is = 0
    for _ in range(20_000):
        name = rng.choice(["To", "Subject", "Message-ID", "MIME-Version", "X-Long-Header-Name"])
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 90)))
        try:
            expected = standard._fold(name, value, False)
        except email.errors.HeaderParseError:
            with pytest.raises(email.errors.HeaderParseError):
                ours._fold(name, value, False)
            continue
        assert ours._fold(name, value, False) == expected, (name, value)
        written_as_is += expected == f"{name}: {value}\r\n"
    assert written_as_is > 1_000  # the shortcut was taken, not only compat32's own path
