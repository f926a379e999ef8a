"""What the report's modules share: the companies and purposes its sections name (each
listed once), and the files' kinds."""

from disclosure.models import RequestFile

Kind = RequestFile.Kind


class _Employers:
    """The companies named anywhere in the report, collected from the rows' joins (no query
    of its own), listed once at the end of the JSON with both names."""

    def __init__(self) -> None:
        self.by_id: dict[int, dict] = {}

    def add(self, employer_id: int | None, name: str | None, name_en: str | None) -> None:
        if employer_id is not None and employer_id not in self.by_id:
            self.by_id[employer_id] = {"id": employer_id, "name": name, "name_en": name_en or ""}

    def listed(self) -> list[dict]:
        return sorted(self.by_id.values(), key=lambda e: (e["name"], e["id"]))


class _Purposes:
    def __init__(self) -> None:
        self.by_code: dict[str, dict] = {}

    def add(self, row: dict, prefix: str = "purpose__") -> str:
        code = row[f"{prefix}code"]
        if code not in self.by_code:
            self.by_code[code] = {
                "code": code,
                "title_ja": row[f"{prefix}title_ja"],
                "title_en": row[f"{prefix}title_en"],
                "data_items_ja": row[f"{prefix}data_items_ja"],
                "data_items_en": row[f"{prefix}data_items_en"],
            }
        return code

    def listed(self) -> list[dict]:
        return sorted(self.by_code.values(), key=lambda p: p["code"])


_PURPOSE_FIELDS = (
    "purpose__code",
    "purpose__title_ja",
    "purpose__title_en",
    "purpose__data_items_ja",
    "purpose__data_items_en",
)
