"""Deleting a set of rows in a few set-based statements, whatever points at them.

Django's `QuerySet.delete()` deletes in one statement only while every relation to the rows
is DO_NOTHING. As soon as one is not (a correction's SET_NULL link to an activity record, an
inference's CASCADE to its disputes) it reads every row into Python, then nulls and deletes
them a hundred keys a statement. Erasing a student's 10,000 activity records in a deletion
filing took 128 statements and half a second while the student waited; the retention job's
1,000,000 took 9,000 statements. `delete_set` looks once whether there is anything to delete, then
does what each relation asks in one statement over the rows' keys as a subquery (SET_NULL an
UPDATE, CASCADE the same recursively), then deletes the rows in one more.
"""

from django.db import transaction
from django.db.models import CASCADE, DO_NOTHING, SET_NULL, QuerySet
from django.db.models.deletion import get_candidate_relations_to_delete
from django.db.models.signals import post_delete, pre_delete


def delete_set(queryset: QuerySet) -> int:
    """Delete `queryset`'s rows, with what its relations ask, in one transaction. Returns how
    many of its own rows went (an inference's disputes going with it are not counted).

    Any rule other than CASCADE, SET_NULL and DO_NOTHING (PROTECT, RESTRICT, SET_DEFAULT,
    SET(...)) somewhere below, a delete signal's receiver, a parent table or a generic
    relation leaves it to Django's own `delete()`, which knows them all."""
    if not _set_based(queryset.model):
        _deleted, by_model = queryset.delete()
        return by_model.get(queryset.model._meta.label, 0)
    relations = list(get_candidate_relations_to_delete(queryset.model._meta))
    # Often there is nothing to delete (a deletion filed by a student with no activity
    # records): one look, as Django's own delete() takes, rather than a statement a relation.
    if relations and not queryset.exists():
        return 0
    # No savepoint, as Django's delete() takes none: a failure fails the caller's transaction.
    with transaction.atomic(using=queryset.db, savepoint=False):
        return _delete(queryset)


def _set_based(model, seen: frozenset = frozenset()) -> bool:
    if model in seen:  # a cycle: Django orders those
        return False
    if pre_delete.has_listeners(model) or post_delete.has_listeners(model):
        return False
    # A parent table (multi-table inheritance) or a generic relation: Django's to handle.
    if model._meta.parents or any(
        hasattr(field, "bulk_related_objects") for field in model._meta.private_fields
    ):
        return False
    for relation in get_candidate_relations_to_delete(model._meta):
        rule = relation.on_delete
        if rule is CASCADE:
            if not _set_based(relation.related_model, seen | {model}):
                return False
        elif rule not in (SET_NULL, DO_NOTHING):
            return False
    return True


def _delete(queryset: QuerySet) -> int:
    keys = queryset.values("pk")
    for relation in get_candidate_relations_to_delete(queryset.model._meta):
        name = relation.field.name
        related = relation.related_model._base_manager.filter(**{f"{name}__in": keys})
        if relation.on_delete is SET_NULL:
            related.update(**{name: None})
        elif relation.on_delete is CASCADE:
            _delete(related)
    # Django's own single-statement delete, the one `delete()` sends when nothing points at
    # the rows: everything that did has been dealt with above.
    return queryset._raw_delete(queryset.db)
