#!/usr/bin/env bash
# The Debian packages the portal needs beyond Python: a CJK font for the PDFs, Pango for
# WeasyPrint, gettext to compile translations, poppler-utils to read PDFs back. With --ci
# also Chromium for the browser tests. Installs what is missing when run as root; otherwise
# prints the one command that does and fails.
set -euo pipefail

packages=(fonts-ipaexfont-gothic libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 gettext poppler-utils)
if [[ "${1:-}" == "--ci" ]]; then
  # the browser tests (tests/e2e) drive Debian's Chromium; `make test` skips them, saying
  # so once, where it is missing
  packages+=(chromium)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ! command -v dpkg-query >/dev/null; then
  echo "system-deps: not a Debian/Ubuntu system; install by hand: IPAexGothic font, Pango >= 1.44, GNU gettext" >&2
  exit 0
fi
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  echo "system-deps: installing ${missing[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "system-deps: missing Debian packages: ${missing[*]}" >&2
  echo "Run this once, then try again:" >&2
  echo "  sudo sh -c '$command'" >&2
  exit 1
fi
