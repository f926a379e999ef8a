"""portal/shared/mime.py: the outbox's email written as Django writes it, but the boundary's
form, with the standard library's costs taken out."""

import email
import email.header
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


def test_a_kept_fold_is_the_one_for_its_own_line_ending_and_length():
    """A folded header is kept by its value and by what folding depends on: the same
    subject folded for "\\n" and "\\r\\n", 78 and 40 characters, each as compat32 folds it,
    the first time and when it is kept."""
    subject = SUBJECTS[0]
    encoded = email.header.Header(subject, "utf-8").encode()
    for linesep in ("\r\n", "\n"):
        for length in (78, 40):
            standard = email.policy.compat32.clone(linesep=linesep, max_line_length=length)
            ours = UNFOLDED.clone(linesep=linesep, max_line_length=length)
            for value in (subject, encoded):
                expected = standard._fold("Subject", value, False)
                assert ours._fold("Subject", value, False) == expected
                assert ours._fold("Subject", value, False) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "請求のお知らせ\nBcc: someone@example.net"},
        {"subject": "plain\r\nBcc: someone@example.net"},
        {"to": ["privacy@example.jp\nBcc: someone@example.net"]},
        {"cc": ["a@example.jp", "b@example.jp\rX-Injected: 1"]},
    ],
)
def test_a_header_with_a_line_break_is_refused_each_time(fields):
    """Django's refusal of a line break in a header (header injection) holds for the headers
    whose check is kept: an error is never kept as if it were a value."""
    from django.core.mail import BadHeaderError

    for _ in range(2):
        mail = OutgoingEmail(
            **{"subject": "s", "body": "text", "to": ["x@example.jp"], **fields},
        )
        mail.attach_alternative("<p>html</p>", "text/html")
        with pytest.raises(BadHeaderError):
            mail.message()


@pytest.mark.parametrize(
    "address",
    [
        "privacy-038@bench.example.jp",
        "個人情報ポータル <noreply@example.jp>",
        '"O\'Brien, Co" <x@example.jp>',
        "担当者@example.jp",
        "someone@例え.jp",
        ("山田 太郎", "yamada@example.jp"),
    ],
)
def test_an_envelope_address_is_djangos_first_time_and_kept(address):
    from django.core.mail.message import sanitize_address

    from portal.shared.mime import envelope_address

    expected = sanitize_address(address, "utf-8")
    assert envelope_address(address, "utf-8") == expected
    assert envelope_address(address, "utf-8") == expected


@pytest.mark.parametrize("address", ["@@", "a@b.jp trailing words", "a@b.jp, c@d.jp"])
def test_an_address_django_refuses_is_refused_each_time(address):
    from django.core.mail.message import sanitize_address

    from portal.shared.mime import envelope_address

    with pytest.raises(ValueError):
        sanitize_address(address, "utf-8")
    for _ in range(2):
        with pytest.raises(ValueError):
            envelope_address(address, "utf-8")


# --- the outbox's shape written straight to bytes (OutgoingEmail.wire_bytes) -------------------

_WORDS = [
    "本文",
    "個人データ",
    "請求",
    "R-261206-160E8360BB",
    "deletion",
    "From",
    ".",
    "a",
    "😀",
    "é",
    "\t",
    "  ",
    "=?utf-8?q?not?=",
    "\u2028",
    "\x85",
    "\x0c",
]
_ADDRESSES = [
    "privacy-038@bench.example.jp",
    "個人情報担当 <privacy@example.jp>",
    '"O\'Brien, Co" <x@example.jp>',
    "Plain Name <plain@example.jp>",
]


_LONG_WORDS = ["長い" * 200, "x" * 300]  # a few of them make a line over 998 bytes


def _word(rng: random.Random) -> str:
    return rng.choice(_LONG_WORDS) if rng.random() < 0.01 else rng.choice(_WORDS)


def _random_text(rng: random.Random, *, line_breaks: str = "\n") -> str:
    lines = []
    for _ in range(rng.randint(1, 12)):
        lines.append(" ".join(_word(rng) for _ in range(rng.randint(0, 8))))
    text = rng.choice([line_breaks, line_breaks * 2]).join(lines)
    return text + rng.choice(["", "\n", "\n\n"])


def _random_mail(rng: random.Random) -> OutgoingEmail:
    mail = OutgoingEmail(
        subject=" ".join(rng.choice(_WORDS[:8] + ["Your request", "の"]) for _ in range(6)),
        body=_random_text(rng, line_breaks=rng.choice(["\n", "\n", "\n", "\r\n"])),
        from_email=rng.choice(NAMES),
        to=rng.sample(_ADDRESSES, rng.randint(1, 2)),
        cc=[f"cc{n}@example.jp" for n in range(rng.choice([0, 0, 1, 3, 15]))],
    )
    mail.attach_alternative("<p>" + _random_text(rng) + "</p>", "text/html")
    return mail


def _django_bytes_like(mail: OutgoingEmail, wire: bytes) -> bytes:
    """Django's own bytes for `mail` (EmailMultiAlternatives), with the boundary, Date and
    Message-ID that `wire` drew."""
    date = re.search(rb"\r\nDate: ([^\r]+)\r\n", wire).group(1).decode()
    message_id = re.search(rb"\r\nMessage-ID: ([^\r]+)\r\n", wire).group(1).decode()
    theirs = EmailMultiAlternatives(
        subject=mail.subject,
        body=mail.body,
        from_email=mail.from_email,
        to=mail.to,
        cc=mail.cc,
        headers={"Date": date, "Message-ID": message_id},
    )
    for content, mimetype in mail.alternatives:
        theirs.attach_alternative(content, mimetype)
    raw = theirs.message().as_bytes(linesep="\r\n")
    [theirs_boundary], [ours] = _boundaries(raw), _boundaries(wire)
    return raw.replace(theirs_boundary, ours)


def test_the_outbox_shape_written_straight_is_djangos_bytes(monkeypatch):
    """Thousands of random messages of the outbox's shape: Japanese and ASCII, display names,
    long Cc lists, lines over 998 bytes, carriage returns, line separators Python splits at:
    each written exactly as Django writes it, whichever way it went."""
    from portal.shared import mime

    direct = 0
    taken = mime._wire_bytes

    def counting(mail):
        nonlocal direct
        wire = taken(mail)
        direct += wire is not None
        return wire

    monkeypatch.setattr(mime, "_wire_bytes", counting)
    rng = random.Random(2019)
    for _ in range(3_000):
        mail = _random_mail(rng)
        wire = mail.wire_bytes()
        assert wire == _django_bytes_like(mail, wire), (mail.subject, mail.body, mail.to)
    # Most went the direct way; the others (a long line, a carriage return) through Django's.
    assert 1_000 < direct < 3_000


@pytest.mark.parametrize(
    "change",
    [
        lambda mail: mail.extra_headers.update({"Reply-To": "x@example.jp"}),
        lambda mail: mail.attach("a.txt", "attached", "text/plain"),
        lambda mail: setattr(mail, "body", "line\rwith a carriage return"),
        lambda mail: setattr(mail, "body", "long " * 300),
        lambda mail: setattr(mail, "alternatives", []),
        lambda mail: setattr(mail, "body", ""),
    ],
)
def test_any_other_shape_goes_through_djangos_message(change):
    from portal.shared import mime

    mail = OutgoingEmail(subject="s", body="text", to=["x@example.jp"])
    mail.attach_alternative("<p>html</p>", "text/html")
    assert mime._wire_bytes(mail) is not None
    change(mail)
    assert mime._wire_bytes(mail) is None
    wire = mail.wire_bytes()
    assert wire.startswith(b"Content-Type: ") and b"\r\nMessage-ID: " in wire
