"""The admin's search box on the large ledgers, by indexes (`make bench-scale`).

Django's search is one OR across every search field, joined tables included: on a ledger of
1,000,000 consent events, "student's email contains x OR company's name contains x" cannot
use any index, so PostgreSQL reads the whole ledger and joins every row (11-20 s). Here
each related table is searched on its own first (100,000 students, 30,000 companies: small
next to the ledger), and the ledger is then filtered by the matching keys
(`student_id IN (…)`), which its foreign-key indexes serve. The matches are the same as
Django's: each word of the search must match some field; `=` is an exact match (an exact
one on a UUID or number, so its unique index serves it), `^` a prefix, otherwise
"contains", case-insensitively, which PostgreSQL's trigram indexes serve for a term of three
characters or more (portal/shared/trigram.py). One difference, for speed: a word that is
exactly a unique email address or reference (of the row or of its student, request...) finds
those rows by the unique indexes, and not also the rows that merely contain it somewhere (the
whole of an address or a reference is what staff paste).
"""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.text import smart_split, unescape_string_literal

# Up to this many matching related rows are sent as a list of keys (the ledger's index is
# looked up once per key); more, and the ledger is filtered by a subquery instead.
MAX_KEYS = 1000
PREFIXES = {"=": "exact", "^": "istartswith", "@": "search"}
# The shortest term a trigram index serves (portal/shared/trigram.py).
TRIGRAM = 3


def _lookup(model, spec: str, term: str) -> Q | None:
    """The condition of one search field on `model` for `term` (None when it cannot match)."""
    prefix = spec[0] if spec[0] in PREFIXES else ""
    name, kind = spec.removeprefix(prefix), PREFIXES.get(prefix, "icontains")
    if kind == "icontains" and len(term) < TRIGRAM and term.upper() == term.lower():
        # A surname of two kanji, a number: the term has no case, so "contains" is the same
        # match; with fewer than three characters no trigram index serves it, and PostgreSQL
        # reads the table, three times faster without UPPER() on every value.
        kind = "contains"
    if kind == "exact":
        field = model._meta.get_field(name) if "__" not in name else None
        if field is None or isinstance(field, (models.CharField, models.TextField)):
            kind = "iexact"
        else:
            try:
                term = field.to_python(term)
            except ValidationError:
                return None  # "abc" is no UUID: that field cannot match
    return Q(**{f"{name}__{kind}": term})


def _forward(model, name: str):
    """The forward foreign key (or one-to-one) `name` of `model`, or None."""
    field = model._meta.get_field(name)
    return field if field.many_to_one or (field.one_to_one and field.concrete) else None


def _backward(model, name: str):
    """The reverse foreign key `name` of `model` (an employer's `contacts`), or None."""
    field = model._meta.get_field(name)
    return field if field.one_to_many and field.auto_created else None


def _split(model, specs: list[str]) -> tuple[list[str], dict[str, list[str]], dict]:
    """`specs` as the model's own fields (and many-to-many relations, which Django joins),
    per forward relation the fields searched in the related table, and the same per reverse
    foreign key."""
    own: list[str] = []
    related: dict[str, list[str]] = {}
    backward: dict[str, list[str]] = {}
    for spec in specs:
        prefix = spec[0] if spec[0] in PREFIXES else ""
        head, sep, rest = spec.removeprefix(prefix).partition("__")
        if sep and _forward(model, head):
            related.setdefault(head, []).append(prefix + rest)
        elif sep and _backward(model, head):
            backward.setdefault(head, []).append(prefix + rest)
        else:
            own.append(spec)
    return own, related, backward


def _keys(model, q: Q) -> list:
    return list(model._default_manager.filter(q).order_by().values_list("pk", flat=True)[:MAX_KEYS])


def _exactly(model, specs: list[str], term: str) -> Q | None:
    """The rows where `term` is exactly a unique text field (an email address, a reference),
    here or in a related table, each found by its unique index; None when it is nowhere."""
    own, related, _backward_specs = _split(model, specs)
    found = [
        Q(**{name: term})
        for spec in own
        if "__" not in (name := spec.lstrip("=^@"))
        and isinstance(field := model._meta.get_field(name), (models.CharField, models.TextField))
        and field.unique
        and model._default_manager.filter(**{name: term}).exists()
    ]
    for name, subspecs in related.items():
        target = _forward(model, name).related_model
        if (q := _exactly(target, subspecs, term)) is not None:
            found.append(Q(**{f"{name}__in": _keys(target, q)}))
    return Q.create(found, connector=Q.OR) if found else None


def _containing(model, specs: list[str], term: str) -> Q:
    """Rows of `model` where some field of `specs` matches `term`: its own fields directly,
    a related table's through the keys of its matching rows (searched the same way)."""
    own, related, backward = _split(model, specs)
    found = [q for spec in own if (q := _lookup(model, spec, term)) is not None]
    for name, subspecs in related.items():
        target = _forward(model, name).related_model
        matches = target._default_manager.filter(_containing(target, subspecs, term))
        keys = list(matches.order_by().values_list("pk", flat=True)[: MAX_KEYS + 1])
        if len(keys) > MAX_KEYS:
            found.append(Q(**{f"{name}__in": matches.order_by().values("pk")}))
        elif keys:
            found.append(Q(**{f"{name}__in": keys}))
    for name, subspecs in backward.items():
        # Rows that some related row points to: a subquery of its foreign key, not a join,
        # so each row comes once and its own columns' indexes still serve the rest.
        relation = _backward(model, name)
        target = relation.related_model
        matches = target._default_manager.filter(_containing(target, subspecs, term))
        found.append(Q(pk__in=matches.order_by().values(relation.field.attname)))
    return Q.create(found, connector=Q.OR) if found else Q(pk__in=[])


def search_q(model, specs: list[str], term: str) -> Q:
    """Rows of `model` matching `term` in `specs` (the admin's search_fields)."""
    return _exactly(model, specs, term) or _containing(model, specs, term)


class IndexedSearchMixin:
    """A ModelAdmin whose search resolves related tables to keys first (see above)."""

    def get_search_results(self, request, queryset, search_term):
        specs = [str(spec) for spec in self.get_search_fields(request)]
        if not (specs and search_term):
            return queryset, False
        for bit in smart_split(search_term):
            if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
                bit = unescape_string_literal(bit)
            queryset = queryset.filter(search_q(queryset.model, specs, bit))
        # Own fields and relations searched through keys give each row once; a many-to-many
        # relation is a join that may repeat a row.
        return queryset, any(_joined(queryset.model, spec) for spec in specs)


def _joined(model, spec: str) -> bool:
    head, sep, _rest = spec.lstrip("=^@").partition("__")
    return bool(sep) and not (_forward(model, head) or _backward(model, head))
