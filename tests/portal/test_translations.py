"""The message catalogues: complete, consistent with the code, and used when rendering.

Japanese is the primary language and English the source language (every English msgstr
equals its msgid). What to do when a test here fails:

* an entry is untranslated or fuzzy, or a string in the code is missing from the
  catalogue: run `DEBUG=1 .venv/bin/python manage.py makemessages -l ja -l en
  --ignore=.venv --ignore=tests`, translate the new entries in locale/ja, copy msgid to
  msgstr in locale/en (`msgen`), remove the `#, fuzzy` flags, then `make messages`;
* the compiled catalogue is out of date: run `make messages`.
"""

import ast
import gettext
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ("ja", "en")
PLURALS = {"ja": "nplurals=1; plural=0;", "en": "nplurals=2; plural=(n != 1);"}
HOW_TO_UPDATE = (
    "run `DEBUG=1 .venv/bin/python manage.py makemessages -l ja -l en --ignore=.venv "
    "--ignore=tests`, translate the new entries in "
    "locale/ja/LC_MESSAGES/django.po, fill locale/en with msgstr = msgid (`msgen`), "
    "remove the fuzzy flags, then `make messages`"
)
# Japanese strings that may legitimately contain no kana or kanji (none so far).
JA_WITHOUT_JAPANESE_OK: set[str] = set()

PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?([diouxXeEfFgGcrsa%])")
HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")


# --- A small .po reader (no dependency on polib) -----------------------------------------


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    references: list[str] = field(default_factory=list)
    line: int = 0

    @property
    def is_header(self) -> bool:
        return self.msgid == "" and self.msgctxt is None

    @property
    def fuzzy(self) -> bool:
        return "fuzzy" in self.flags

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and all(self.msgstr.values())

    def describe(self) -> str:
        where = f" ({', '.join(self.references)})" if self.references else ""
        return f"line {self.line}: {self.msgid!r}{where}"


def _unquote(text: str) -> str:
    return ast.literal_eval(text)  # a .po string is a valid Python string literal


def po_entries(path: Path) -> list[Entry]:
    """The entries of a .po file, the header first; obsolete (#~) entries are left out."""
    entries: list[Entry] = []
    current = Entry()
    key: tuple[str, int] | None = None

    def finish():
        nonlocal current
        if current.msgstr:
            entries.append(current)
        current = Entry()

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#~"):
            continue
        if line.startswith("#"):
            if current.msgstr:
                finish()
            if line.startswith("#,"):
                current.flags.update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#:"):
                current.references.extend(line[2:].split())
            continue
        match = re.match(r"(msgctxt|msgid_plural|msgid|msgstr)(?:\[(\d+)\])?\s+(\".*\")$", line)
        if match:
            keyword, index, value = match.groups()
            if keyword in ("msgctxt", "msgid") and current.msgstr:
                finish()
            if keyword in ("msgctxt", "msgid") and not current.line:
                current.line = number
            key = (keyword, int(index or 0))
            value = _unquote(value)
            if keyword == "msgstr":
                current.msgstr[key[1]] = value
            else:
                setattr(current, keyword, value)
        elif line.startswith('"') and key is not None:
            value = _unquote(line)
            if key[0] == "msgstr":
                current.msgstr[key[1]] += value
            else:
                setattr(current, key[0], (getattr(current, key[0]) or "") + value)
        else:
            raise AssertionError(f"{path}:{number}: cannot read {raw!r}")
    finish()
    return entries


def po_path(language: str, root: Path = ROOT) -> Path:
    return root / "locale" / language / "LC_MESSAGES" / "django.po"


def header(entries: list[Entry]) -> dict[str, str]:
    assert entries and entries[0].is_header, "the catalogue has no header entry"
    lines = entries[0].msgstr[0].splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def messages(language: str) -> list[Entry]:
    return [entry for entry in po_entries(po_path(language)) if not entry.is_header]


def placeholders(text: str) -> list[str]:
    found = [
        f"%({name})" + conversion if name else "%" + conversion
        for name, conversion in PLACEHOLDER.findall(text)
    ]
    return sorted(p for p in found if p != "%%")


def gettext_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"GNU gettext's `{name}` is not installed: run `make sysdeps`")
    return path


# --- The catalogues themselves ----------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_header_names_the_language_charset_and_plural_forms(language):
    entries = po_entries(po_path(language))
    values = header(entries)
    assert not entries[0].fuzzy, "remove the `#, fuzzy` flag from the header"
    assert values.get("Language") == language
    assert values.get("Content-Type") == "text/plain; charset=UTF-8"
    assert values.get("Plural-Forms") == PLURALS[language]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_entry_is_translated_and_none_is_fuzzy(language):
    entries = messages(language)
    assert entries, f"locale/{language} has no messages"
    untranslated = [entry.describe() for entry in entries if not entry.translated]
    fuzzy = [entry.describe() for entry in entries if entry.fuzzy]
    assert not untranslated, f"untranslated in locale/{language}: {untranslated}; {HOW_TO_UPDATE}"
    assert not fuzzy, f"fuzzy in locale/{language} (check, then remove the flag): {fuzzy}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_plural_entries_have_one_msgstr_per_plural_form(language):
    nplurals = int(re.search(r"nplurals=(\d+)", PLURALS[language]).group(1))
    wrong = [
        entry.describe()
        for entry in messages(language)
        if entry.msgid_plural is not None and sorted(entry.msgstr) != list(range(nplurals))
    ]
    assert not wrong, f"locale/{language} needs msgstr[0..{nplurals - 1}] in: {wrong}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_every_placeholder_and_html_tag(language):
    nplurals = int(re.search(r"nplurals=(\d+)", PLURALS[language]).group(1))
    problems = []
    for entry in messages(language):
        for index, translated in entry.msgstr.items():
            # With one plural form, msgstr[0] serves every count, like msgid_plural.
            source = entry.msgid
            if entry.msgid_plural is not None and (index > 0 or nplurals == 1):
                source = entry.msgid_plural
            if placeholders(translated) != placeholders(source):
                problems.append(
                    f"{entry.describe()}: {placeholders(source)} became "
                    f"{placeholders(translated)} in msgstr[{index}]"
                )
            if sorted(HTML_TAG.findall(translated)) != sorted(HTML_TAG.findall(source)):
                problems.append(f"{entry.describe()}: HTML tags differ in msgstr[{index}]")
    assert not problems, "\n".join(problems)


def test_english_translations_are_the_source_strings():
    wrong = []
    for entry in messages("en"):
        expected = {0: entry.msgid}
        if entry.msgid_plural is not None:
            expected[1] = entry.msgid_plural
        if entry.msgstr != expected:
            wrong.append(entry.describe())
    assert not wrong, f"in locale/en every msgstr must equal its msgid (use `msgen`): {wrong}"


def test_japanese_translations_are_in_japanese():
    english = [
        entry.describe()
        for entry in messages("ja")
        if entry.msgid not in JA_WITHOUT_JAPANESE_OK
        and not all(JAPANESE.search(text) for text in entry.msgstr.values())
    ]
    assert not english, f"these locale/ja entries are not translated into Japanese: {english}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_msgfmt_check_accepts_the_catalogue(language, tmp_path):
    result = subprocess.run(
        [gettext_tool("msgfmt"), "--check", "--statistics", "-o", str(tmp_path / "django.mo")]
        + [str(po_path(language))],
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "untranslated" not in result.stderr, result.stderr
    assert "fuzzy" not in result.stderr, result.stderr


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_matches_the_po_file(language):
    mo = po_path(language).with_suffix(".mo")
    assert mo.exists(), f"{mo.relative_to(ROOT)} is missing: run `make messages`"
    with mo.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = []
    for entry in messages(language):
        if entry.msgid_plural is None:
            if entry.msgctxt is None:
                got = compiled.gettext(entry.msgid)
            else:
                got = compiled.pgettext(entry.msgctxt, entry.msgid)
            if got != entry.msgstr[0]:
                stale.append(entry.describe())
        else:
            for count, index in ((1, 0), (2, 1 if language == "en" else 0)):
                if entry.msgctxt is None:
                    got = compiled.ngettext(entry.msgid, entry.msgid_plural, count)
                else:
                    got = compiled.npgettext(entry.msgctxt, entry.msgid, entry.msgid_plural, count)
                if got != entry.msgstr[index]:
                    stale.append(entry.describe())
    assert not stale, f"{mo.relative_to(ROOT)} is out of date, run `make messages`: {stale}"


def mo_keys(path: Path) -> dict[str, str]:
    """The entries of a compiled catalogue as stored: {key: translation}, where the key is
    msgid, "msgctxt\x04msgid" with a context, "msgid\x00msgid_plural" for plurals."""
    data = path.read_bytes()
    magic = int.from_bytes(data[:4], "little")
    order = "little" if magic == 0x950412DE else "big"
    assert int.from_bytes(data[:4], order) == 0x950412DE, f"{path} is not a .mo file"

    def word(at: int) -> int:
        return int.from_bytes(data[at : at + 4], order)

    count, originals, translations = word(8), word(12), word(16)
    entries = {}
    for index in range(count):
        length, offset = word(originals + 8 * index), word(originals + 8 * index + 4)
        key = data[offset : offset + length].decode("utf-8")
        length, offset = word(translations + 8 * index), word(translations + 8 * index + 4)
        entries[key] = data[offset : offset + length].decode("utf-8")
    return entries


def po_key(entry: Entry) -> str:
    key = entry.msgid if entry.msgid_plural is None else f"{entry.msgid}\x00{entry.msgid_plural}"
    return key if entry.msgctxt is None else f"{entry.msgctxt}\x04{key}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_holds_exactly_the_entries_of_the_po_file(language):
    """gettext falls back to the msgid when an entry is missing, which in English looks
    right: so look for each entry in the compiled file itself."""
    mo = po_path(language).with_suffix(".mo")
    assert mo.exists(), f"{mo.relative_to(ROOT)} is missing: run `make messages`"
    compiled = {key: value for key, value in mo_keys(mo).items() if key}  # "" is the header
    expected = {po_key(entry): entry for entry in messages(language)}
    missing = [expected[key].describe() for key in expected.keys() - compiled.keys()]
    extra = sorted(repr(key) for key in compiled.keys() - expected.keys())
    assert not missing, f"missing from {mo.relative_to(ROOT)} (run `make messages`): {missing}"
    assert not extra, f"{mo.relative_to(ROOT)} has entries the .po file has not: {extra}"
    empty = [expected[key].describe() for key, value in compiled.items() if not value]
    assert not empty, f"empty translations in {mo.relative_to(ROOT)}: {empty}"


# --- The catalogues in use --------------------------------------------------------------


@pytest.mark.django_db
def test_the_home_page_renders_in_japanese(client):
    with translation.override("ja"):
        sign_in = translation.gettext("Sign in")
    assert sign_in != "Sign in" and JAPANESE.search(sign_in)

    response = client.get("/", HTTP_ACCEPT_LANGUAGE="ja")

    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="ja">' in html
    assert sign_in in html  # ログイン
    assert "Sign in" not in html


@pytest.mark.django_db
def test_japanese_is_the_default_language(client):
    html = client.get("/").content.decode()
    assert '<html lang="ja">' in html
    assert "ログイン" in html


@pytest.mark.django_db
def test_the_language_cookie_switches_the_page_to_english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    response = client.get("/", HTTP_ACCEPT_LANGUAGE="ja")

    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="en">' in html
    assert "Sign in" in html
    assert "ログイン" not in html


# --- The catalogue against the code ------------------------------------------------------

COPY_IGNORE = shutil.ignore_patterns(
    ".venv",
    ".git",
    "var",
    "staticfiles",
    "node_modules",
    "test-artifacts",
    ".pytest_cache",
    ".ruff_cache",
    "__pycache__",
    "*.egg-info",
    "*.mo",
)


def test_every_string_in_the_code_is_in_the_catalogue_and_translated(tmp_path):
    """A string added with _() / {% translate %} / {% blocktranslate %} but not translated.

    Runs makemessages in a copy of the repository, so the working tree is not touched, and
    looks for entries that came out empty (a new string) or fuzzy (a new or changed string
    that msgmerge matched to an old translation, which needs checking).
    """
    gettext_tool("xgettext")
    gettext_tool("msgmerge")
    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=COPY_IGNORE)
    command = [sys.executable, "manage.py", "makemessages", "-v0", "--ignore=.venv"]
    command += ["--ignore=tests", *(f"-l{language}" for language in LANGUAGES)]
    result = subprocess.run(
        command,
        cwd=copy,
        capture_output=True,
        text=True,
        env={**os.environ, "DEBUG": "1"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"makemessages failed:\n{result.stderr}"

    problems = []
    for language in LANGUAGES:
        for entry in po_entries(po_path(language, copy)):
            if entry.is_header:
                continue
            if not entry.translated:
                problems.append(f"locale/{language}: new, untranslated: {entry.describe()}")
            elif entry.fuzzy:
                problems.append(f"locale/{language}: changed, fuzzy: {entry.describe()}")
    assert not problems, (
        "strings in the code are missing from the catalogues or need a check:\n"
        + "\n".join(problems)
        + f"\n=> {HOW_TO_UPDATE}"
    )


# --- Text in the templates outside the translation tags ---------------------------------

TEMPLATES = ROOT / "templates"
# Words shown as they are in both languages: names of languages in their own language,
# technical names, the time zone.
UNTRANSLATED_OK = ("日本語", "English", "SHA-256", "IP", "Asia/Tokyo")
_NOT_SHOWN = re.compile(
    r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}|{#.*?#}"
    r"|{%\s*blocktrans(?:late)?\b.*?{%\s*endblocktrans(?:late)?\s*%}"
    r"|<(script|style|code|pre|kbd|samp)\b.*?</\1>|<!--.*?-->",
    re.S,
)
_TEMPLATE_TAG = re.compile(r"{%.*?%}|{{.*?}}", re.S)
# An HTML tag, a template tag right after "<" included (<{% if a %}a{% else %}button...>).
_HTML_TAG = re.compile(r"<[a-zA-Z/!{][^>]*>", re.S)
_ATTRIBUTE = re.compile(r"""([\w-]+)\s*=\s*("[^"]*"|'[^']*')""")
_SHOWN_ATTRIBUTES = {"alt", "title", "placeholder", "aria-label", "aria-description", "label"}
_ENTITY = re.compile(r"&#?\w+;")
_LETTERS = re.compile(r"[A-Za-z\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")


def _untranslated(text: str) -> bool:
    text = _ENTITY.sub(" ", text)
    for word in UNTRANSLATED_OK:
        text = text.replace(word, " ")
    return bool(_LETTERS.search(text))


def untranslated_text(source: str, *, html: bool) -> list[str]:
    """Text a reader sees that no {% translate %} / {% blocktranslate %} produced: text
    between tags, and the attributes a reader sees or hears (alt, title, placeholder,
    aria-label, the value of a button). A heuristic: comments, scripts, styles and code
    samples are left out; template variables count as translated."""
    source = _NOT_SHOWN.sub(" ", source)
    found = []
    if html:
        for tag in _HTML_TAG.findall(source):
            attributes = _ATTRIBUTE.findall(_TEMPLATE_TAG.sub("\x00", tag))
            pairs = {name.lower(): value[1:-1] for name, value in attributes}
            shown = [v for k, v in pairs.items() if k in _SHOWN_ATTRIBUTES]
            if pairs.get("type", "").lower() in ("submit", "button", "reset") and "value" in pairs:
                shown.append(pairs["value"])
            found += [value.strip() for value in shown]
        source = _HTML_TAG.sub("\n", source)
    source = _TEMPLATE_TAG.sub("\x00", source)
    found += [line.strip() for line in source.split("\x00") for line in line.splitlines()]
    return [text for text in found if _untranslated(text)]


def test_the_untranslated_text_finder_finds_what_it_should():
    # Guards the guard below.
    assert untranslated_text("<p>Hello {{ name }}</p>", html=True) == ["Hello"]
    assert untranslated_text('<img alt="A chart" src="x.png">', html=True) == ["A chart"]
    assert untranslated_text('<input type="submit" value="Save">', html=True) == ["Save"]
    assert untranslated_text("{% translate 'Hello' %} {{ x }}", html=True) == []
    assert (
        untranslated_text("{% blocktranslate %}Hi {{ a }}{% endblocktranslate %}", html=True) == []
    )
    assert untranslated_text("<a title=\"{% translate 'Home' %}\">→</a>", html=True) == []
    assert untranslated_text("<code>Authorization: Bearer</code> · SHA-256", html=True) == []
    assert untranslated_text('<meta name="robots" content="noindex">', html=True) == []
    assert untranslated_text("Dear {{ name }},\nBest regards", html=False) == [
        "Dear",
        "Best regards",
    ]


def test_no_template_shows_text_outside_the_translation_tags():
    found = []
    for path in sorted(TEMPLATES.rglob("*")):
        if path.suffix in (".html", ".txt"):
            source = path.read_text(encoding="utf-8")
            for text in untranslated_text(source, html=path.suffix == ".html"):
                found.append(f"{path.relative_to(ROOT)}: {text!r}")
    assert not found, (
        "text not wrapped in {% translate %} / {% blocktranslate %} (or add a word shown as "
        "it is in both languages to UNTRANSLATED_OK):\n" + "\n".join(found)
    )
