"""What goes into a CSV file the portal writes, so that opening it in a spreadsheet never
runs anything: every cell passes through `csv_safe`, in every `csv.writer` of the project.
"""

# A cell starting with one of these is taken by Excel, LibreOffice or Google Sheets as a
# formula (=HYPERLINK(...), =cmd|...), or, for tab and carriage return, as the start of
# another cell before one of those. The full-width signs are there because a Japanese input
# method types them, and a spreadsheet may read them as the ASCII ones; prefixing costs nothing
# where they are harmless.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def csv_safe(text: str) -> str:
    """`text` as a cell that a spreadsheet shows as text: one starting like a formula gets
    a leading apostrophe (OWASP's advice for CSV injection), which spreadsheets hide."""
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text
