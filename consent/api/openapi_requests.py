"""The companies' requests in the OpenAPI document (GET /requests, POST /requests/{reference}/
answer; the views are disclosure/api.py). A part of the one document, which openapi.py
assembles; kept apart only for length.

The answers are written out here because consent imports no disclosure module;
tests/consent/test_api_openapi.py checks them against disclosure's ANSWERS_BY_KIND.
"""

from consent.api.openapi_common import DATETIME, error, json_response, ref
from consent.api.payloads import (
    DEFAULT_REQUESTS_LIMIT,
    MAX_ANSWERED_BY,
    MAX_CURSOR,
    MAX_IDEMPOTENCY_KEY,
    MAX_REQUESTS_LIMIT,
    MAX_STATEMENT,
    REQUEST_STATUSES,
)

ANSWERS_BY_KIND = {
    "deletion": ["deleted", "held_none", "refused"],
    "cessation": ["stopped", "held_none", "refused"],
    "disclosure": ["disclosed", "held_none", "refused"],
    "correction": ["corrected", "held_none", "refused"],
}
ANSWERS = sorted({answer for answers in ANSWERS_BY_KIND.values() for answer in answers})
REFERENCE = {
    "type": "string",
    "pattern": "^R-[0-9]{6}-[0-9A-F]{10}$",
    "description": "The request's reference, as in the company's email.",
    "examples": ["R-260401-3F9A0C12BE"],
}
# Text a person wrote: no NUL character, and at least one that is not a space.
WRITTEN = "^[^\\u0000]*[^\\u0000\\s][^\\u0000]*$"


ANSWER_EXAMPLE = {
    "answer": "deleted",
    "answered_at": "2026-04-03T02:15:00.000Z",
    "answered_by": "佐藤 花子, 人事部長",
    "statement": "本学生のデータおよびそこから作成したスコア等の結果をすべて削除したことを"
    "確認します。",
    "via": "api",
}
REQUEST_EXAMPLE = {
    "reference": "R-260401-3F9A0C12BE",
    "kind": "deletion",
    "scope": "received_data",
    "status": "open",
    "filed_at": "2026-04-01T01:00:00.000Z",
    "due_at": "2026-05-01T01:00:00.000Z",
    "reminders_sent": 0,
    "student": {"name": "山田 花子", "email": "hanako@example.jp"},
    "provisions": [
        {
            "purpose": "provision_to_employer",
            "purpose_title": "分析結果の企業への提供",
            "data_items": "閲覧履歴スコア, 志望度",
            "provided_at": "2026-03-12T09:00:00.000Z",
            "first_provided_at": "2026-02-10T09:00:00.000Z",
        }
    ],
    "answer": None,
    "correction": None,
    "changed_at": "2026-04-01T01:00:02.114Z",
}

SCHEMAS = {
    "CompanyRequest": {
        "type": "object",
        "description": "A student's request as passed on to your company: what the answer "
        "page shows, and no more.",
        "required": [
            "reference",
            "kind",
            "scope",
            "status",
            "filed_at",
            "due_at",
            "reminders_sent",
            "student",
            "provisions",
            "answer",
            "correction",
            "changed_at",
        ],
        "properties": {
            "reference": REFERENCE,
            "kind": {
                "type": "string",
                "enum": list(ANSWERS_BY_KIND),
                "description": "deletion: delete the student's data and everything derived "
                "from it; cessation: stop using it and passing it on; disclosure: tell the "
                "student what you hold; correction: correct the data named in correction.",
            },
            "scope": {
                "type": "string",
                "enum": ["received_data", "consent_only"],
                "description": "What the request covers for your company: received_data, "
                "the data you received through the site (listed in provisions) and every "
                "score or result made from it; consent_only, no data received yet, but the "
                "student had consented to your company receiving it.",
            },
            "status": {
                "type": "string",
                "enum": ["open", "answered", "closed"],
                "description": "open: waiting for your answer; closed: the request was "
                "cancelled, or support staff stopped waiting for your answer.",
            },
            "filed_at": DATETIME,
            "due_at": {**DATETIME, "description": "Answer by then."},
            "reminders_sent": {"type": "integer", "minimum": 0},
            "student": {
                "type": "object",
                "required": ["name", "email"],
                "properties": {
                    "name": {"type": "string"},
                    "email": {"type": "string", "description": "The registered address."},
                },
            },
            "provisions": {
                "type": "array",
                "description": "What your company received about the student, newest first "
                "(at most 500 rows; a bulk record is one row).",
                "items": {
                    "type": "object",
                    "required": [
                        "purpose",
                        "purpose_title",
                        "data_items",
                        "provided_at",
                        "first_provided_at",
                    ],
                    "properties": {
                        "purpose": {"type": "string"},
                        "purpose_title": {
                            "type": "string",
                            "description": "In the language asked (Accept-Language).",
                        },
                        "data_items": {"type": "string"},
                        "provided_at": {**DATETIME, "description": "For a bulk record: last."},
                        "first_provided_at": {"oneOf": [DATETIME, {"type": "null"}]},
                    },
                },
            },
            "answer": {"oneOf": [ref("CompanyAnswer"), {"type": "null"}]},
            "correction": {
                "description": "For a correction: what the student says is wrong and what "
                "is right (the answer page's card); null for the other kinds.",
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["target", "data", "wrong", "right", "portal"],
                        "properties": {
                            "target": {
                                "type": "string",
                                "enum": ["profile", "activity", "inference", "company"],
                                "description": "The student's name on the portal, one "
                                "activity record, one inferred result, or data your company "
                                "holds (described in wrong).",
                            },
                            "data": {
                                "type": "string",
                                "description": "The data as it was (a record, a result, "
                                "the name); empty for data your company holds.",
                            },
                            "wrong": {"type": "string", "description": "In the student's words."},
                            "right": {"type": "string", "description": "May be empty."},
                            "portal": {
                                "type": "string",
                                "enum": ["corrected", "disputed", "passed_on"],
                                "description": "The portal's own part: corrected in its "
                                "records, marked disputed, or none held (passed on).",
                            },
                        },
                    },
                    {"type": "null"},
                ],
            },
            "changed_at": {
                **DATETIME,
                "description": "When anything here last changed (sent, reminded, the due "
                "date, answered, closed).",
            },
        },
    },
    "CompanyAnswer": {
        "type": "object",
        "required": ["answer", "answered_at", "answered_by", "statement", "via"],
        "properties": {
            "answer": {"type": "string", "enum": ANSWERS},
            "answered_at": DATETIME,
            "answered_by": {"type": "string"},
            "statement": {
                "type": "string",
                "description": "The reason (refused), the data described (disclosed), the "
                "attestation confirmed (deleted, stopped), or empty.",
            },
            "via": {
                "type": "string",
                "enum": ["link", "workspace", "staff", "api"],
                "description": "The answer link, the company's workspace, support staff (an "
                "answer received another way), or an API key.",
            },
        },
    },
    "CompanyRequestsPage": {
        "type": "object",
        "required": ["requests", "next", "has_more"],
        "properties": {
            "requests": {"type": "array", "items": ref("CompanyRequest")},
            "next": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page: opaque, and only for this "
                "key. The cursor you sent (or null) when the page is empty.",
            },
            "has_more": {"type": "boolean", "description": "Ask again at once when true."},
        },
    },
    "CompanyAnswerRequest": {
        "type": "object",
        "required": ["answer", "answered_by"],
        "properties": {
            "answer": {
                "type": "string",
                "enum": ANSWERS,
                "description": "One that fits the request's kind: deletion deleted, "
                "held_none or refused; cessation stopped, held_none or refused; disclosure "
                "disclosed, held_none or refused; correction corrected, held_none or "
                "refused. Another is 422 (field answer).",
            },
            "answered_by": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_ANSWERED_BY,
                "pattern": WRITTEN,
                "description": "The person responsible: name and position.",
                "examples": ["佐藤 花子, 人事部長"],
            },
            "statement": {
                "type": "string",
                "maxLength": MAX_STATEMENT,
                "pattern": "^[^\\u0000]*$",
                "description": "Required with refused (why you cannot comply, at most 4,000 "
                "characters; the student is told) and disclosed (the data you hold); "
                "refused with any other answer (422, field statement).",
            },
            "attestation": {
                "type": "boolean",
                "default": False,
                "description": "Required true with deleted and stopped: you confirm that "
                "every copy and every score or result made from the data is deleted (or no "
                "longer used or passed on) and will not be used in a hiring decision, as on "
                "the answer page. Its words, in your language, become the statement.",
            },
        },
    },
    "CompanyAnswerResponse": {
        "type": "object",
        "required": ["request"],
        "properties": {"request": ref("CompanyRequest")},
    },
    "CompanyAnswerConflict": {
        "type": "object",
        "required": ["error", "request"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": ["already_answered", "closed"]},
                    "message": {"type": "string"},
                },
            },
            "request": ref("CompanyRequest"),
        },
    },
}

COMMON = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "405": {"$ref": "#/components/responses/MethodNotAllowed"},
    "429": {"$ref": "#/components/responses/RateLimited"},
    "500": {"$ref": "#/components/responses/ServerError"},
}
SCOPE_403 = error(
    "The key lacks the scope (missing_scope), or it is not a company's key (out_of_scope)."
)

PATHS = {
    "/requests": {
        "get": {
            "operationId": "requestsList",
            "summary": "The students' requests passed on to your company.",
            "description": (
                "For a company's key with the requests:read scope: its own company's "
                "requests only. Oldest change first, by (changed_at, id): a request that "
                "changes while you page through comes again on a later page, so keep paging "
                "until has_more is false, then keep `next` and ask with it later for what "
                "changed since. A change appears about five seconds after it happens, so that "
                "one still committing is never skipped."
            ),
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "description": "open (waiting for your answer), answered, or all.",
                    "schema": {
                        "type": "string",
                        "enum": list(REQUEST_STATUSES),
                        "default": "open",
                    },
                },
                {
                    "name": "changed_since",
                    "in": "query",
                    "description": "Only requests changed at or after this time (RFC 3339, "
                    "with its offset).",
                    "schema": DATETIME,
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "description": "The `next` of the previous page.",
                    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CURSOR},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_REQUESTS_LIMIT,
                        "default": DEFAULT_REQUESTS_LIMIT,
                    },
                },
            ],
            "responses": {
                "200": json_response(
                    ref("CompanyRequestsPage"),
                    "A page of requests.",
                    {"requests": [REQUEST_EXAMPLE], "next": "WzQsMTc3…:1u2v3w", "has_more": False},
                ),
                "400": error(
                    "A status, time, cursor or limit that is not valid (bad_status, "
                    "bad_changed_since, bad_cursor: one this key was not given; bad_limit), "
                    "or another query parameter (unknown_parameter)."
                ),
                "403": SCOPE_403,
                **COMMON,
            },
        }
    },
    "/requests/{reference}/answer": {
        "post": {
            "operationId": "requestAnswer",
            "summary": "Answer a request passed on to your company, once.",
            "description": (
                "For a company's key with the requests:answer scope; the same answer as the "
                "answer page's, recorded as given by API with the key's name (the student's "
                "timeline and certificate say so). The student is told by email, and the "
                "request completes when the last company answers. A request of another "
                "company is 404, as an unknown reference is."
            ),
            "parameters": [
                {
                    "name": "reference",
                    "in": "path",
                    "required": True,
                    "schema": REFERENCE,
                },
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "description": "Required: any unique value of yours (a UUID, say). A "
                    "retry with the same key, reference and body is answered as the first "
                    "success was (with Idempotent-Replayed: true); the same key with another "
                    "reference or body is 422 idempotency_key_reused. Missing: 400 "
                    "missing_idempotency_key.",
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_IDEMPOTENCY_KEY,
                        "pattern": "^[!-~]+$",
                    },
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": ref("CompanyAnswerRequest"),
                        "example": {
                            "answer": "deleted",
                            "answered_by": "佐藤 花子, 人事部長",
                            "attestation": True,
                        },
                    }
                },
            },
            "responses": {
                "200": {
                    **json_response(
                        ref("CompanyAnswerResponse"),
                        "Recorded (or the replay of this Idempotency-Key's first answer).",
                        {
                            "request": {
                                **REQUEST_EXAMPLE,
                                "status": "answered",
                                "answer": ANSWER_EXAMPLE,
                            }
                        },
                    ),
                    "headers": {
                        "Idempotent-Replayed": {
                            "schema": {"type": "string", "enum": ["true"]},
                            "description": "Present when this is the stored answer.",
                        }
                    },
                },
                "400": error(
                    "The body is not JSON, or the Idempotency-Key is missing "
                    "(missing_idempotency_key) or malformed (bad_idempotency_key)."
                ),
                "403": SCOPE_403,
                "404": error("unknown_request: your company has no request with this reference."),
                "409": json_response(
                    ref("CompanyAnswerConflict"),
                    "already_answered (the answer recorded is in `request`), or closed (the "
                    "request was cancelled or your task closed by staff).",
                ),
                "413": error("A body over 2.5 MB."),
                "422": error(
                    "The JSON has the wrong shape or breaks a rule stated above (`field` "
                    "says which: answer, answered_by, statement, attestation), or the "
                    "Idempotency-Key was used with another body (idempotency_key_reused)."
                ),
                **COMMON,
            },
        }
    },
}
