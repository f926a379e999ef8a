"""What the browser tests share: the browser's settings, the accessibility check (axe-core),
the reflow check, screenshots, downloads, keyboard steps, and the emails they follow.

A `Visit` wraps one Playwright page for one person (a student, a company clerk, a support
agent). Every page a test lands on must be `check()`ed: the test fails at its end if a page
was visited but never checked, so "every page of the journeys passes axe" stays true as
journeys change.

Every page also runs under the portal's Content-Security-Policy: a listener added before any
of the page's own code records each `securitypolicyviolation` (an inline script or style, an
on*= handler, a script, style, image or form target from elsewhere), and `check()` fails the
journey on the first page that had one, naming it and what the browser blocked.
"""

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import axe_playwright_python
from django.conf import settings
from pypdf import PdfReader

from tests.smtp import SmtpServer, text_of

# Debian's package; E2E_CHROMIUM points elsewhere (another build of Chromium).
CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    # The machine's closed network refuses Chromium's own background connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    f"Chromium is not installed ({CHROMIUM}), so the browser tests in tests/e2e did NOT run. "
    "Install it with `sudo bash scripts/system-deps.sh --ci` (Debian's chromium package), "
    "then run `make test` again."
)
# .ci/run gives each pass its own folder: both passes run at once and name their tests alike.
ARTIFACTS = Path(
    os.environ.get("E2E_ARTIFACTS") or Path(settings.BASE_DIR) / "var" / "e2e-artifacts"
)

# What one action (a click and the page it loads, a download) may take before the test fails.
# Generous: it costs nothing while pages answer, and CI's SQLite pass runs its live server at
# nice 10 beside the PostgreSQL pass, where one filing that renders a PDF took over 15 s.
ACTION_TIMEOUT_MS = 45_000

VIEWPORTS = {
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}
# WCAG 2.2 reflow (1.4.10): content readable without horizontal scrolling at 320 CSS px,
# which is a 1280 px window at 400% zoom, or a phone at 200%.
REFLOW_WIDTH = 320

AXE_SCRIPT = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
AXE_BLOCKING = ("serious", "critical")
# Every rule axe runs by default, and WCAG 2.2 AA's target size (2.5.8), which it does not.
AXE_OPTIONS = {"resultTypes": ["violations"], "rules": {"target-size": {"enabled": True}}}
WAIT = 60  # seconds, for anything done by a worker in another process


def artifact_dir(nodeid: str) -> Path:
    """var/e2e-artifacts/<test-id>/, emptied for this run."""
    name = re.sub(r"[^\w.-]+", "-", nodeid.removeprefix("tests/e2e/")).strip("-")
    path = ARTIFACTS / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


# Accessibility ------------------------------------------------------------------------------
# The page's markup without its words: elements, classes, roles, ARIA and input types, and
# the inline styles. Two pages alike in all that get the same answers from axe-core (its rules
# read structure, names' presence and computed colours, which come from the classes), so the
# run checks each shape once per width and language; any difference runs axe again.
SHAPE = """() => {
  const parts = [document.documentElement.lang, innerWidth];
  const shape = v => v.replace(/[0-9]+/g, '#');  // ids carry primary keys
  for (const el of document.querySelectorAll('*')) {
    const attrs = [];
    for (const a of el.attributes) {
      if (['class', 'role', 'type', 'style', 'scope', 'lang', 'tabindex'].includes(a.name))
        attrs.push(a.name + '=' + a.value);
      else if (['id', 'for', 'headers', 'list', 'form', 'name'].includes(a.name)
               || (a.name.startsWith('aria-') && a.name !== 'aria-label'))
        attrs.push(a.name + '=' + shape(a.value));
      else if (['alt', 'title', 'aria-label', 'href', 'autocomplete', 'value'].includes(a.name))
        attrs.push(a.name + (a.value.trim() ? '+' : '-'));
    }
    parts.push(el.tagName + '[' + attrs.join(',') + ']');
    // with or without words matters (empty links, headings, buttons, labels)
    if (!el.children.length) parts.push(el.textContent.trim() ? 'T' : '_');
  }
  return parts.join('|');
}"""
_passed_shapes: set[str] = set()
# The shapes that passed, shared by this run's xdist workers (a file each, named by its
# digest): each worker checked every shape again, though the journeys of one pass share
# most of their pages. Keyed by the run (xdist's id for it), so no later run trusts it.
_PASSED_SHAPES_DIR = Path(tempfile.gettempdir()) / (
    "portal-axe-" + os.environ.get("PYTEST_XDIST_TESTRUNUID", f"pid{os.getpid()}")
)


def _shape_passed(shape: str) -> bool:
    return shape in _passed_shapes or (_PASSED_SHAPES_DIR / shape).exists()


def _shape_passes(shape: str) -> None:
    _passed_shapes.add(shape)
    _PASSED_SHAPES_DIR.mkdir(parents=True, exist_ok=True)
    (_PASSED_SHAPES_DIR / shape).touch()


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT)
    results = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    return [v for v in results["violations"] if v["impact"] in AXE_BLOCKING]


def describe_violations(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"- [{violation['impact']}] {violation['id']}: {violation['help']}")
        lines.append(f"  {violation['helpUrl']}")
        for node in violation["nodes"][:6]:
            lines.append(f"    at {' '.join(map(str, node['target']))}")
            lines.append(f"       {node['html'][:200]}")
            summary = " ".join(node.get("failureSummary", "").split())
            if summary:
                lines.append(f"       {summary[:400]}")
        if len(violation["nodes"]) > 6:
            lines.append(f"    … and {len(violation['nodes']) - 6} more")
    return "\n".join(lines)


def horizontal_overflow(page) -> int:
    """How many CSS px the document is wider than the window (0: no sideways scrolling)."""
    return page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )


def wide_elements(page) -> list[str]:
    """The elements that stick out of the window, to say what breaks the reflow."""
    return page.evaluate(
        """() => {
          const limit = document.documentElement.clientWidth;
          const out = [];
          for (const el of document.querySelectorAll('body *')) {
            const r = el.getBoundingClientRect();
            if (r.right > limit + 1 && getComputedStyle(el).position !== 'absolute') {
              out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                       (el.className ? '.' + String(el.className).split(' ').join('.') : '') +
                       ' right=' + Math.round(r.right));
            }
          }
          return out.slice(0, 12);
        }"""
    )


FOCUS_STYLE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  // The colour behind the ring: the nearest ancestor with an opaque background.
  let behind = [255, 255, 255];
  for (let node = el.parentElement; node; node = node.parentElement) {
    const c = rgb(getComputedStyle(node).backgroundColor);
    if (c.length >= 3 && (c.length < 4 || c[3] > 0.9)) { behind = c.slice(0, 3); break; }
  }
  const s = getComputedStyle(el);
  const ring = rgb(s.outlineColor).slice(0, 3);
  const [hi, lo] = [luminance(ring), luminance(behind)].sort((a, b) => b - a);
  return {
    tag: el.tagName.toLowerCase(),
    text: (el.innerText || el.value || el.getAttribute('aria-label') || '')
      .replace(/\\s+/g, ' ').trim().slice(0, 80),
    name: el.getAttribute('name'),
    type: el.getAttribute('type'),
    href: el.getAttribute('href'),
    id: el.id,
    outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
    contrast: (hi + 0.05) / (lo + 0.05),
  };
}"""


# Every status, notice and message says what it means in words and shows an icon, so colour
# is never the only sign (WCAG 1.4.1): the elements that break this rule.
STATUS_WITHOUT_WORDS_OR_ICON = """() => {
  const out = [];
  const sel = '.state, .request-status, .task-state, .notice, .message, .error-summary';
  for (const el of document.querySelectorAll(sel)) {
    const icon = el.querySelector('[aria-hidden="true"]');
    const words = el.innerText.replace(icon ? icon.innerText : '', '').trim();
    const isSummary = el.classList.contains('error-summary');  // a heading says it
    if (!words || (!icon && !isSummary)) out.push(el.outerHTML.slice(0, 200));
  }
  return out;
}"""


# Content-Security-Policy -------------------------------------------------------------------
# Runs in every document before its own scripts (Playwright injects it outside the page's
# CSP) and hands each violation to Python at once, so one that happens as a page is left
# (a blocked form target, say) is kept across the navigation.
CSP_LISTENER = """() => {
  document.addEventListener('securitypolicyviolation', event => {
    window.__cspViolation({
      page: location.href,
      directive: event.effectiveDirective,
      blocked: event.blockedURI,
      source: event.sourceFile,
      line: event.lineNumber,
      sample: event.sample,
    });
  });
}"""


def describe_csp_violations(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        where = f" at {v['source']}:{v['line']}" if v["source"] else ""
        sample = f": {v['sample']!r}" if v["sample"] else ""
        lines.append(f"- {v['directive']} blocked {v['blocked'] or 'inline'}{where}{sample}")
        lines.append(f"  on {v['page']}")
    return "\n".join(lines)


# Mail --------------------------------------------------------------------------------------
LINK = re.compile(r"https?://[^\s<>\"')]+")


def links_in(message) -> list[str]:
    return LINK.findall(text_of(message))


def subject_of(message) -> str:
    return " ".join(str(message["Subject"]).split())


def wait_for_mail(smtp: SmtpServer, condition, what: str) -> list:
    """The messages meeting `condition(message)`, once at least one has arrived."""
    deadline = time.monotonic() + WAIT
    while True:
        with smtp._lock:
            found = [m for m in smtp.messages if condition(m)]
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no email {what} within {WAIT} s; received: {smtp.summary()}")
        time.sleep(0.05)


# Files -------------------------------------------------------------------------------------
def pdf_text(content: bytes) -> str:
    assert content.startswith(b"%PDF-"), content[:40]
    reader = PdfReader(io.BytesIO(content))
    assert len(reader.pages) >= 1
    return "\n".join(page.extract_text() for page in reader.pages)


def squash(text: str) -> str:
    return "".join(text.split())


# One person's browser tab ------------------------------------------------------------------
@dataclass
class Visit:
    """One person's page, with the checks every page goes through."""

    page: object
    base_url: str
    artifacts: Path
    viewport: str = "desktop"
    # Journey 6: on every checked page, switch to English and back.
    toggle_language: bool = False
    label: str = ""
    visited: list[str] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)
    shots: int = 0
    axe_runs: int = 0
    axe_skipped: int = 0  # pages of a shape already checked
    # (page name, seconds since the last check: the person's steps and the server's work,
    # seconds the checks took), written to timings.txt beside the screenshots
    timings: list[tuple[str, float, float]] = field(default_factory=list)
    _last: float = field(default_factory=time.monotonic)

    csp_violations: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self.page.on("framenavigated", self._navigated)
        self.page.expose_function("__cspViolation", self._csp_violation)
        self.page.add_init_script(f"({CSP_LISTENER})()")

    def _csp_violation(self, report: dict) -> None:
        self.csp_violations.append(report)

    def _navigated(self, frame) -> None:
        if frame == self.page.main_frame and frame.url.startswith(self.base_url):
            self.visited.append(frame.url.split("#")[0])  # not a new page: a place in one

    # navigation
    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    def goto(self, path: str):
        response = self.page.goto(self.url(path))
        assert response is not None and response.ok, f"{path}: {response and response.status}"
        return response

    @property
    def path(self) -> str:
        return urlsplit(self.page.url).path

    # the checks of every page
    def check(self, name: str, *, shot: bool = True) -> None:
        """axe-core finds nothing serious; no sideways scrolling at 320 px; a screenshot;
        with `toggle_language`, the switcher turns the page to English and back."""
        page = self.page
        started = time.monotonic()
        page.wait_for_load_state("load")
        where = f"{name} ({page.url}, {self.viewport})"
        self.assert_no_csp_violations(where)
        self._assert_axe(where)
        unclear = page.evaluate(STATUS_WITHOUT_WORDS_OR_ICON)
        assert not unclear, f"{where}: a status without words or an icon: {unclear}"
        if self.viewport == "phone":
            self._assert_reflow(where)
        if shot and not self.toggle_language:  # (there: the English page's, below)
            self.screenshot(name)
        self.checked.add(page.url.split("#")[0])
        if self.toggle_language:
            self.switch_language_and_back(name)
        now = time.monotonic()
        self.timings.append((name, started - self._last, now - started))
        self._last = now

    def assert_no_csp_violations(self, where: str) -> None:
        """Nothing was blocked by the Content-Security-Policy since the last check."""
        # A round trip: the page's reports sent before it have reached Python after it.
        self.page.evaluate("() => new Promise(resolve => setTimeout(resolve))")
        found, self.csp_violations[:] = list(self.csp_violations), []
        assert not found, (
            f"{where}: the Content-Security-Policy blocked {len(found)} thing(s) on this page "
            f"or on the way to it:\n{describe_csp_violations(found)}"
        )

    def _assert_axe(self, where: str) -> None:
        shape = hashlib.sha256(self.page.evaluate(SHAPE).encode()).hexdigest()
        if _shape_passed(shape):
            self.axe_skipped += 1
            return
        self.axe_runs += 1
        before = len(self.csp_violations)
        violations = axe_violations(self.page)
        self._forget_axe_csp_violations(since=before)
        assert not violations, f"axe-core on {where}:\n{describe_violations(violations)}"
        _shape_passes(shape)

    def _forget_axe_csp_violations(self, *, since: int) -> None:
        """axe-core reads a stylesheet it cannot walk (one with an @import, as the admin's
        forms.css) by fetching its text and parsing it in a <style> element of its own; the
        policy blocks that, which is the policy working, not the page failing. Those reports
        come from no file (a page's own inline <style> names its page)."""
        self.page.evaluate("() => new Promise(resolve => setTimeout(resolve))")
        self.csp_violations[since:] = [
            v
            for v in self.csp_violations[since:]
            if not (
                v["directive"] == "style-src-elem" and v["blocked"] == "inline" and not v["source"]
            )
        ]

    def _assert_reflow(self, where: str) -> None:
        page = self.page
        size = page.viewport_size
        page.set_viewport_size({"width": REFLOW_WIDTH, "height": size["height"]})
        try:
            overflow = horizontal_overflow(page)
            assert overflow <= 0, (
                f"{where}: at {REFLOW_WIDTH} CSS px the page scrolls sideways by {overflow} px; "
                f"too wide: {wide_elements(page)}"
            )
        finally:
            page.set_viewport_size(size)

    def screenshot(self, name: str) -> Path:
        self.shots += 1
        slug = re.sub(r"[^\w-]+", "-", name).strip("-")
        path = self.artifacts / f"{self.label}{self.shots:02d}-{slug}.jpg"
        # JPEG at one pixel per CSS pixel: several times faster to encode than a PNG at the
        # phone's device pixels, and plenty to see what a page looked like.
        self.page.screenshot(path=path, full_page=True, type="jpeg", quality=75, scale="css")
        return path

    def write_timings(self) -> None:
        lines = [f"{'page':<28} {'steps':>6} {'checks':>6}"]
        lines += [f"{name:<28} {steps:6.2f} {checks:6.2f}" for name, steps, checks in self.timings]
        lines.append(
            f"axe-core runs: {self.axe_runs}, same shape as a page checked: {self.axe_skipped}"
        )
        path = self.artifacts / f"{self.label}timings.txt"
        path.write_text("\n".join(lines) + "\n")

    def assert_every_page_checked(self) -> None:
        if not self.page.is_closed():
            self.assert_no_csp_violations(f"after the last check ({self.page.url})")
        unchecked = [url for url in dict.fromkeys(self.visited) if url not in self.checked]
        assert not unchecked, f"pages visited but never checked (axe, reflow): {unchecked}"

    # language
    def language(self) -> str:
        return self.page.get_attribute("html", "lang")

    def choose_language(self, code: str) -> None:
        page = self.page
        page.select_option("#language-select", code)
        with page.expect_navigation():
            page.locator(".language-switcher button[type=submit]").click()

    def page_text(self) -> dict[str, str]:
        """The page's words: its title, h1, the labels of its structure (headings, terms,
        labels, buttons, links in the header), and its main text without the one-off
        messages of the last action."""
        return self.page.evaluate(
            """() => {
              const words = sel => Array.from(document.querySelectorAll(sel))
                .map(e => e.innerText.trim()).join(' | ');
              const main = document.querySelector('main').cloneNode(true);
              main.querySelectorAll('.messages').forEach(m => m.remove());
              return {
                title: document.title,
                h1: words('main h1'),
                labels: words('header a, header label, header button, main h2, main dt, '
                              + 'main label, main legend, main button, footer'),
                main: main.innerText.trim(),
              };
            }"""
        )

    def switch_language_and_back(self, name: str) -> None:
        page = self.page
        start = self.language()
        assert start == "ja", f"{name}: the page starts in {start!r}, not Japanese"
        url = page.url
        japanese = self.page_text()
        self.choose_language("en")
        assert self.language() == "en", f"{name}: <html lang> after choosing English"
        # (the same address; a #place in the page is the browser's, never sent to the server)
        same = page.url.split("#")[0] == url.split("#")[0]
        assert same, f"{name}: the switcher left the page ({url} → {page.url})"
        english = self.page_text()
        for part in ("title", "h1", "labels", "main"):
            assert english[part] != japanese[part], f"{name}: the {part} stayed {english[part]!r}"
        self.assert_no_csp_violations(f"{name} in English ({url})")
        self._assert_axe(f"{name} in English ({url})")
        self.screenshot(f"{name}-en")
        self.checked.add(page.url.split("#")[0])
        self.choose_language("ja")
        assert self.language() == "ja", f"{name}: <html lang> after choosing Japanese again"
        again = self.page_text()
        # The same words again (the data shown may have moved on: a worker sends meanwhile).
        for part in ("title", "h1", "labels"):
            assert again[part] == japanese[part], (
                f"{name}: back in Japanese, the {part} is {again[part]!r}, not {japanese[part]!r}"
            )

    # downloads
    def download(self, locator) -> tuple[str, bytes]:
        """Click a download link; the file's suggested name and its bytes."""
        with self.page.expect_download() as info:
            locator.click()
        download = info.value
        assert download.failure() is None, download.failure()
        path = self.artifacts / f"{self.label}{download.suggested_filename}"
        download.save_as(path)
        return download.suggested_filename, path.read_bytes()

    # keyboard
    def focused(self) -> dict | None:
        return self.page.evaluate(FOCUS_STYLE)

    def tab_to(self, matches, *, what: str, limit: int = 80, backwards: bool = False) -> dict:
        """Press Tab (or Shift+Tab) until the focused element `matches(info)`; every element
        passed on the way must show a visible focus indicator."""
        key = "Shift+Tab" if backwards else "Tab"
        seen = []
        for _ in range(limit):
            self.page.keyboard.press(key)
            info = self.focused()
            if info is None:
                continue
            seen.append(info["text"] or info["name"] or info["href"])
            assert info["outline"], f"no visible focus ring on {info}"
            # WCAG 2.2 1.4.11: a focus indicator contrasts 3:1 with what is around it.
            assert info["contrast"] >= 3, f"focus ring contrast {info['contrast']:.2f} on {info}"
            if matches(info):
                return info
        raise AssertionError(f"{what}: not reached with {key} in {limit} presses; passed {seen}")


def json_of(content: bytes) -> dict:
    return json.loads(content.decode())
