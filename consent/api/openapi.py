"""The consent API's OpenAPI 3.1 document, kept by hand next to the views it describes.

Served at GET /api/v1/openapi.json. tests/consent/test_api_openapi.py validates it and checks
the views' real answers against its schemas; change both together.
"""

import json

from consent.api import openapi_inferences, openapi_requests
from consent.api.openapi_common import DATETIME, batch_response, error, json_response, ref
from consent.api.payloads import (
    ACTIVITY_KINDS,
    DEFAULT_CHANGES_LIMIT,
    MAX_BATCH,
    MAX_CHANGES_LIMIT,
    MAX_DATA_ITEMS,
    MAX_DETAIL,
    MAX_ID,
    MAX_IDEMPOTENCY_KEY,
    MAX_RECORD_ID,
    MAX_REFERENCE,
)


def _with_replayed(response: dict) -> dict:
    response["headers"] = {
        "Idempotent-Replayed": {
            "schema": {"type": "string", "enum": ["true"]},
            "description": "Present when this is the stored answer to an Idempotency-Key.",
        }
    }
    return response


STUDENT = {
    "type": "string",
    "format": "uuid",
    "description": "The student's pseudonymous id (never their email address).",
    "examples": ["6f1c2d1e-8a4b-4c1e-9d7a-0b5e3f2a1c9d"],
}
# Ids are bigints: the API refuses a larger number (422) rather than let the database fail.
EMPLOYER = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_ID,
    "description": "The employer's id.",
    "examples": [3],
}
PURPOSE = {
    "type": "string",
    "minLength": 1,
    "description": "A purpose code, e.g. behaviour_analysis or provision_to_employer.",
    "examples": ["behaviour_analysis"],
}
# Stored text holds no NUL character (PostgreSQL's text cannot); such a body is 422.
NO_NUL = "^[^\\u0000]*$"

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Stable, for programs: e.g. missing_key, invalid_key, "
                        "revoked_key, rate_limited, malformed_json, invalid_field, "
                        "batch_too_large, too_large, bad_cursor, bad_limit, unknown_parameter, "
                        "out_of_scope, missing_scope, bad_idempotency_key, "
                        "idempotency_key_reused, "
                        "unknown_student, unknown_employer, unknown_purpose, no_valid_grant, "
                        "before_grant, reference, future, first_after_last, data_items, "
                        "unknown_request, already_answered, closed, bad_status, "
                        "bad_changed_since, missing_idempotency_key, "
                        "method_not_allowed, not_found, server_error.",
                    },
                    "message": {"type": "string", "description": "For people; may change."},
                    "field": {
                        "type": "string",
                        "description": "The field that is wrong, e.g. checks[3].employer.",
                    },
                },
            }
        },
    },
    "Check": {
        "type": "object",
        "required": ["student", "employer", "purpose"],
        "properties": {"student": STUDENT, "employer": EMPLOYER, "purpose": PURPOSE},
    },
    "CheckRequest": {
        "type": "object",
        "required": ["checks"],
        "properties": {
            "checks": {"type": "array", "maxItems": MAX_BATCH, "items": ref("Check")},
        },
    },
    "Basis": {
        "type": "object",
        "description": "The grant the answer relies on.",
        "required": ["event_id", "granted_at", "policy_version"],
        "properties": {
            "event_id": {"type": "integer", "description": "The grant's consent event id."},
            "granted_at": DATETIME,
            "policy_version": {
                "type": "string",
                "description": "The policy version the student had accepted when granting.",
                "examples": ["2019.03"],
            },
        },
    },
    "CheckResult": {
        "type": "object",
        "required": ["student", "employer", "purpose", "allowed", "reason", "basis"],
        "properties": {
            "student": {"type": "string", "description": "As sent."},
            "employer": {"type": "integer", "description": "As sent."},
            "purpose": {"type": "string", "description": "As sent."},
            "allowed": {"type": "boolean"},
            "reason": {
                "type": "string",
                "enum": [
                    "granted",
                    "no_valid_grant",
                    "unknown_student",
                    "unknown_purpose",
                    "out_of_scope",
                ],
                "description": "granted: a valid grant exists now. out_of_scope: an employer's "
                "key asked about another employer (nothing about that row is revealed).",
            },
            "basis": {"oneOf": [ref("Basis"), {"type": "null"}]},
        },
    },
    "CheckResponse": {
        "type": "object",
        "required": ["results"],
        "properties": {
            "results": {
                "type": "array",
                "items": ref("CheckResult"),
                "description": "One per check, in the order sent.",
            }
        },
    },
    "ProvisionRequest": {
        "type": "object",
        "required": ["student", "employer", "purpose", "data_items"],
        "properties": {
            "student": STUDENT,
            "employer": EMPLOYER,
            "purpose": PURPOSE,
            "data_items": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_DATA_ITEMS,
                "pattern": NO_NUL,
                "description": "Which data items were given, in words.",
            },
            "provided_at": {
                **DATETIME,
                "description": "When (for a bulk record: the last time). Default: now. Must "
                "carry a UTC offset (Z or +09:00): a time without one is refused (422), not "
                "guessed.",
            },
            "first_provided_at": {
                **DATETIME,
                "description": "For a bulk record: the first time. Not after provided_at.",
            },
            "reference": {
                "type": "string",
                "maxLength": MAX_REFERENCE,
                "pattern": NO_NUL,
                "description": "Your idempotency key: sending the same reference again "
                "answers 200 with the record the first call made.",
            },
        },
    },
    "Provision": {
        "type": "object",
        "required": [
            "id",
            "consent_event_id",
            "student",
            "employer",
            "purpose",
            "data_items",
            "provided_at",
            "first_provided_at",
            "recorded_at",
            "reference",
        ],
        "properties": {
            "id": {"type": "integer"},
            "consent_event_id": {
                "type": "integer",
                "description": "The grant the provision relied on.",
            },
            "student": STUDENT,
            "employer": EMPLOYER,
            "purpose": PURPOSE,
            "data_items": {"type": "string"},
            "provided_at": DATETIME,
            "first_provided_at": {"oneOf": [DATETIME, {"type": "null"}]},
            "recorded_at": DATETIME,
            "reference": {"type": ["string", "null"]},
        },
    },
    "ActivityRecord": {
        "type": "object",
        "required": ["id", "student", "kind", "occurred_at"],
        "properties": {
            "id": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_RECORD_ID,
                "pattern": "^[^\\u0000-\\u001f\\u007f]*$",
                "description": "Your id for the record, unique among your records: sending "
                "it again is answered `duplicate` and stores nothing.",
            },
            "student": STUDENT,
            "employer": {
                "oneOf": [EMPLOYER, {"type": "null"}],
                "description": "The company the activity concerns (a job listing's), if any.",
            },
            "kind": {"type": "string", "enum": list(ACTIVITY_KINDS)},
            "detail": {
                "type": ["string", "null"],
                "maxLength": MAX_DETAIL,
                "pattern": NO_NUL,
                "description": "What was viewed or searched, in words. Default: empty.",
            },
            "occurred_at": {
                **DATETIME,
                "description": "When it happened, with a UTC offset (a time without one is "
                "refused, 422).",
            },
        },
    },
    "ActivityRequest": {
        "type": "object",
        "required": ["records"],
        "properties": {
            "records": {"type": "array", "maxItems": MAX_BATCH, "items": ref("ActivityRecord")},
        },
    },
    "ActivityResult": {
        "type": "object",
        "required": ["id", "result", "status"],
        "properties": {
            "id": {"type": "string", "description": "As sent."},
            "result": {
                "type": "string",
                "enum": ["stored", "duplicate", "refused"],
                "description": "duplicate: this id was stored before with the same content "
                "(or earlier in this batch); nothing was stored twice.",
            },
            "status": {
                "type": "integer",
                "enum": [200, 201, 409, 422],
                "description": "As if the record had been sent alone: 201 stored, 200 "
                "duplicate, 409 conflict (the id holds other content), 422 refused.",
            },
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "description": "For a refused record only.",
                "properties": {
                    "code": {
                        "type": "string",
                        "enum": [
                            "conflict",
                            "unknown_student",
                            "unknown_employer",
                            "future",
                            "expired",
                            "erased_by_request",
                            "stopped_by_request",
                        ],
                        "description": "erased_by_request: the student asked for deletion "
                        "after the record's time. stopped_by_request: the student asked for "
                        "cessation after the record's time, or before it and has not granted "
                        "consent to the record's company since. expired: older than the "
                        "activity retention period.",
                    },
                    "message": {"type": "string"},
                },
            },
        },
    },
    "ActivityResponse": batch_response("ActivityResult", "One per record, in the order sent."),
    "Change": {
        "type": "object",
        "required": [
            "id",
            "student",
            "employer",
            "purpose",
            "action",
            "occurred_at",
            "policy_version",
        ],
        "properties": {
            "id": {"type": "integer", "description": "The event id; the next cursor."},
            "student": STUDENT,
            "employer": EMPLOYER,
            "purpose": PURPOSE,
            "action": {
                "type": "string",
                "enum": ["grant", "withdraw", "lapse"],
                "description": "lapse: the newest version the student accepted no longer "
                "lists the purpose, so the grant stopped counting.",
            },
            "occurred_at": DATETIME,
            "policy_version": {"type": "string"},
        },
    },
    "ChangesResponse": {
        "type": "object",
        "required": ["changes", "next_cursor", "has_more"],
        "properties": {
            "changes": {"type": "array", "items": ref("Change")},
            "next_cursor": {
                "type": "integer",
                "description": "Pass as `since` next time: the last id here, or the cursor "
                "you sent when there is nothing new.",
            },
            "has_more": {"type": "boolean", "description": "Ask again at once when true."},
        },
    },
}

RESPONSES = {
    "Unauthorized": error(
        "No key, an unknown key or a revoked key.",
        {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer."}},
    ),
    "RateLimited": error(
        "Over the key's requests per minute.",
        {
            "Retry-After": {
                "schema": {"type": "integer"},
                "description": "Seconds until the next minute's window opens.",
            }
        },
    ),
    "MethodNotAllowed": error(
        "Another HTTP method.",
        {"Allow": {"schema": {"type": "string"}, "description": "The methods answered."}},
    ),
    "MalformedJson": error("The body is not JSON."),
    "MissingScope": error("The key lacks the scope this endpoint needs (missing_scope)."),
    "Invalid": error("The JSON has the wrong shape; `field` says where."),
    "ServerError": error("A fault on the portal's side; retry later."),
}

COMMON = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/MissingScope"},
    "405": {"$ref": "#/components/responses/MethodNotAllowed"},
    "429": {"$ref": "#/components/responses/RateLimited"},
    "500": {"$ref": "#/components/responses/ServerError"},
}

OPENAPI = {
    "openapi": "3.1.0",
    "info": {
        "title": "Student data portal: consent API",
        "version": "1.0.0",
        "summary": "Ask before processing or receiving a student's behaviour data.",
        "description": (
            "For the job site's analytics pipeline and for client companies. Every call but "
            "this document needs `Authorization: Bearer <key>`; keys are made with "
            "`python manage.py create_api_key` and shown once. A pipeline key sees every "
            "employer; an employer's key sees only its own rows. A key holds scopes: "
            "`consents` (checks, the feed, provisions; every key made before scopes existed) "
            "`activity:write` (sending activity records; the site's keys only) and "
            "`inferences:write` (sending the pipeline's inferences; the site's keys only), and a "
            "company's key `requests:read` and `requests:answer` (its own students' "
            "requests, listed and answered); another "
            "endpoint is 403 missing_scope. Requests are limited per key "
            "and minute (429 with Retry-After). Errors are always JSON "
            '`{"error": {"code", "message"}}`. Times are ISO 8601 with an offset; answers '
            "give UTC."
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearerAuth": []}],
    "paths": {
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "405": COMMON["405"],
                },
            }
        },
        "/consents/check": {
            "post": {
                "operationId": "consentsCheck",
                "summary": "May these students' data be processed for these employers now?",
                "description": (
                    f"Up to {MAX_BATCH:,} (student, employer, purpose) triples per request, "
                    "answered in the same order. Ask right before processing: a withdrawal "
                    "takes effect at once."
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("CheckRequest")}},
                },
                "responses": {
                    "200": json_response(ref("CheckResponse"), "One result per check."),
                    "400": {"$ref": "#/components/responses/MalformedJson"},
                    "413": error(f"More than {MAX_BATCH:,} checks, or a body over 2.5 MB."),
                    "422": {"$ref": "#/components/responses/Invalid"},
                    **COMMON,
                },
            }
        },
        "/provisions": {
            "post": {
                "operationId": "provisionsRecord",
                "summary": "Record that a student's data was given to an employer.",
                "description": (
                    "Refused (409 no_valid_grant) unless the student has a valid grant for this "
                    "employer and purpose at this moment. A bulk record gives "
                    "first_provided_at and provided_at (the last time)."
                ),
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "Any unique value of yours (a UUID, say). A retry with "
                        "the same key and the same body is answered as the first successful "
                        "call was (with Idempotent-Replayed: true) and records nothing; the "
                        "same key with another body is 422 idempotency_key_reused. Keys are "
                        "per API key; a refusal keeps nothing, so the key may be sent again. "
                        "Kept 7 days (RETENTION_IDEMPOTENCY_KEY_DAYS).",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_IDEMPOTENCY_KEY,
                            "pattern": "^[!-~]+$",
                        },
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("ProvisionRequest")}},
                },
                "responses": {
                    "200": _with_replayed(
                        json_response(
                            ref("Provision"),
                            "This reference was recorded before, or a replay of this "
                            "Idempotency-Key's first answer.",
                        )
                    ),
                    "201": _with_replayed(json_response(ref("Provision"), "Recorded.")),
                    "400": error("The body is not JSON, or a malformed Idempotency-Key."),
                    "403": error(
                        "An employer's key recording for another employer (out_of_scope), "
                        "or a key without the consents scope (missing_scope)."
                    ),
                    "404": error("Unknown student, employer or purpose (`field` says which)."),
                    "409": error(
                        "no_valid_grant: no valid grant now; before_grant: dated before the "
                        "grant; reference: the reference was used for another record."
                    ),
                    "413": error("A body over 2.5 MB."),
                    "422": error(
                        "The JSON has the wrong shape (`field` says where), or the "
                        "Idempotency-Key was used with another body (idempotency_key_reused)."
                    ),
                    **{k: v for k, v in COMMON.items() if k != "403"},
                },
            }
        },
        "/activity": {
            "post": {
                "operationId": "activityRecord",
                "summary": "Send the activity records the site collected.",
                "description": (
                    f"Up to {MAX_BATCH:,} records per request, for a key with the "
                    "activity:write scope. Each record is answered in the order sent: stored, "
                    "duplicate (its id was stored before with the same content: nothing is "
                    "stored twice, so a whole batch may be retried), or refused with a status "
                    "and a code: 409 conflict (the id holds other content), 422 for an "
                    "unknown student or company, a time in the future or past the retention "
                    "period, or a record the student's deletion or cessation request covers. "
                    "A deletion covers records dated at or before it (they were to be erased); "
                    "later ones are stored. A cessation covers records before it and after "
                    "it, unless the student granted consent to the record's company again "
                    "after it. The answer is 200 whenever the batch was read."
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("ActivityRequest")}},
                },
                "responses": {
                    "200": json_response(ref("ActivityResponse"), "One result per record."),
                    "400": {"$ref": "#/components/responses/MalformedJson"},
                    "413": error(f"More than {MAX_BATCH:,} records, or a body over 2.5 MB."),
                    "422": {"$ref": "#/components/responses/Invalid"},
                    **COMMON,
                },
            }
        },
        "/consents/changes": {
            "get": {
                "operationId": "consentsChanges",
                "summary": "Grants, withdrawals and lapses after a cursor, oldest first.",
                "description": (
                    "Keep a copy in sync: start with since=0, then pass next_cursor; ask again "
                    "at once while has_more is true. An event appears about five seconds after "
                    "it happens, so that an event whose transaction is still committing is not "
                    "skipped by a cursor that moved past it."
                ),
                "parameters": [
                    {
                        "name": "since",
                        "in": "query",
                        "description": "The cursor: events with a greater id are returned.",
                        "schema": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": MAX_ID,
                            "default": 0,
                        },
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_CHANGES_LIMIT,
                            "default": DEFAULT_CHANGES_LIMIT,
                        },
                    },
                ],
                "responses": {
                    "200": json_response(ref("ChangesResponse"), "A page of changes."),
                    "400": error(
                        "A cursor or limit that is not a whole number in range, or a query "
                        "parameter other than since and limit."
                    ),
                    **COMMON,
                },
            }
        },
    },
    "components": {
        "schemas": SCHEMAS,
        "responses": RESPONSES,
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "A key from `manage.py create_api_key` (it starts with sdp_).",
            }
        },
    },
}

SCHEMAS.update(openapi_requests.SCHEMAS)
OPENAPI["paths"].update(openapi_requests.PATHS)
SCHEMAS.update(openapi_inferences.SCHEMAS)
OPENAPI["paths"].update(openapi_inferences.PATHS)

OPENAPI_JSON = json.dumps(OPENAPI, ensure_ascii=False).encode("utf-8")
