"""`POST /inferences` in the OpenAPI document (the view is disclosure/api.py, the service
inferences/services/intake.py). A part of the one document, which openapi.py assembles; kept
apart only for length.

The refusal codes are written out here because consent imports no inferences module;
tests/inferences/test_api.py checks them against what the service answers.
"""

from consent.api.openapi_common import DATETIME, batch_response, error, ref
from consent.api.payloads import (
    MAX_BATCH,
    MAX_CHANGES_LIMIT,
    MAX_ID,
    MAX_IDEMPOTENCY_KEY,
    MAX_OUTPUT_LABEL,
    MAX_RECORD_ID,
)

STUDENT = {
    "type": "string",
    "format": "uuid",
    "description": "The student's pseudonymous id (never their email address).",
}
# Each refusal, with its status: what a schema cannot say, answered per result.
REFUSALS = {
    "conflict": 409,
    "unknown_student": 422,
    "unknown_model": 422,
    "unknown_employer": 422,
    "future": 422,
    "model_not_active": 422,
    "invalid_output": 422,
    "erased_by_request": 422,
    "stopped_by_request": 422,
    "objected": 409,
    "no_valid_grant": 409,
    "before_grant": 409,
    "no_handover_grant": 409,
}


SCHEMAS = {
    "Inference": {
        "type": "object",
        "required": [
            "id",
            "student",
            "model",
            "model_version",
            "employer",
            "output",
            "made_at",
            "input_from",
            "input_to",
        ],
        "properties": {
            "id": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_RECORD_ID,
                "pattern": "^[^\\u0000-\\u001f\\u007f]*$",
                "description": "Your id for the result, unique among your results: sending "
                "it again is answered `duplicate` and records nothing.",
            },
            "student": STUDENT,
            "model": {
                "type": "string",
                "pattern": "^[-a-zA-Z0-9_]{1,60}$",
                "description": "The registered model's code, e.g. decline_likelihood.",
                "examples": ["decline_likelihood"],
            },
            "model_version": {
                "type": "string",
                "pattern": "^[-A-Za-z0-9_.]{1,40}$",
                "description": "The registered version that made it; it must have been active "
                "when the result was made.",
                "examples": ["1.0"],
            },
            "employer": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_ID,
                "description": "The employer the result was made for.",
            },
            "output": {
                "oneOf": [
                    {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_OUTPUT_LABEL,
                        "pattern": "^[^\\u0000-\\u001f\\u007f]*$",
                    },
                    {"type": "number"},
                ],
                "description": "The result: one of the model's labels, or a number in its "
                "range (refused per result otherwise: invalid_output).",
            },
            "made_at": {
                **DATETIME,
                "description": "When the model made it, with a UTC offset.",
            },
            "input_from": {
                **DATETIME,
                "description": "The start of the data it was made from; not after input_to.",
            },
            "input_to": {
                **DATETIME,
                "description": "The end of the data it was made from; not after made_at.",
            },
            "handed_over_at": {
                "oneOf": [DATETIME, {"type": "null"}],
                "description": "When it was handed to the employer, if it was; not before made_at.",
            },
        },
    },
    "InferencesRequest": {
        "type": "object",
        "required": ["inferences"],
        "properties": {
            "inferences": {"type": "array", "maxItems": MAX_BATCH, "items": ref("Inference")},
        },
    },
    "InferenceResult": {
        "type": "object",
        "required": ["id", "result", "status"],
        "properties": {
            "id": {"type": "string", "description": "As sent."},
            "result": {"type": "string", "enum": ["stored", "duplicate", "refused"]},
            "status": {
                "type": "integer",
                "enum": [200, 201, 409, 422],
                "description": "As if the result had been sent alone: 201 recorded, 200 "
                "duplicate, 409 or 422 refused.",
            },
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "description": "For a refused result only.",
                "properties": {
                    "code": {
                        "type": "string",
                        "enum": list(REFUSALS),
                        "description": "409: conflict (the id holds other content), objected "
                        "(the student objected to the model), no_valid_grant (no live grant "
                        "of the model's purpose for this employer), before_grant (made before "
                        "the grant), no_handover_grant (handed over without the student's "
                        "consent to this employer receiving results). 422: unknown_student, "
                        "unknown_model, unknown_employer, "
                        "future, model_not_active (not active when made), invalid_output (not "
                        "the model's output form), erased_by_request and stopped_by_request "
                        "(covered by the student's deletion or cessation request, as "
                        "activity records are).",
                    },
                    "message": {"type": "string"},
                },
            },
        },
    },
    "InferencesResponse": batch_response("InferenceResult", "One per result, in the order sent."),
}

COMMON = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/MissingScope"},
    "405": {"$ref": "#/components/responses/MethodNotAllowed"},
    "429": {"$ref": "#/components/responses/RateLimited"},
    "500": {"$ref": "#/components/responses/ServerError"},
}

PATHS = {
    "/inferences": {
        "post": {
            "operationId": "inferencesRecord",
            "summary": "Send the results the site's registered models made about students.",
            "description": (
                f"Up to {MAX_BATCH:,} results per request, for a key with the "
                "inferences:write scope (the site's pipeline only). Each is answered in the "
                "order sent: stored, duplicate (its id was recorded before with the same "
                "content: a whole batch may be retried), or refused with a status and a code. "
                "A result is refused (409) without a live grant of the model's purpose for "
                "that employer, or when the student objected to the model; (422) when the "
                "student's deletion or cessation request covers it, exactly as an activity "
                "record is. The answer is 200 whenever the batch was read."
            ),
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "As on /provisions: a retry with the same key and body is "
                    "answered as the first call was (Idempotent-Replayed: true); the same key "
                    "with another body is 422 idempotency_key_reused.",
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
                "content": {"application/json": {"schema": ref("InferencesRequest")}},
            },
            "responses": {
                "200": {
                    "description": "One result per inference sent.",
                    "headers": {
                        "Idempotent-Replayed": {
                            "schema": {"type": "string", "enum": ["true"]},
                            "description": "Present when this is the stored answer to an "
                            "Idempotency-Key.",
                        }
                    },
                    "content": {"application/json": {"schema": ref("InferencesResponse")}},
                },
                "400": error("The body is not JSON, or a malformed Idempotency-Key."),
                "413": error(f"More than {MAX_BATCH:,} results, or a body over 2.5 MB."),
                "422": error(
                    "The JSON has the wrong shape (`field` says where), including times out "
                    "of order (input_from after input_to, input_to after made_at, "
                    "handed_over_at before made_at), or the Idempotency-Key was used with "
                    "another body (idempotency_key_reused)."
                ),
                **COMMON,
            },
        }
    }
}


# --- POST /inferences/check and GET /inferences/disputes ------------------------------------

# The check's reasons (inferences/services/checks.py; tests/inferences/test_api_check.py
# holds the service to them).
CHECK_REASONS = (
    "granted",
    "unknown_student",
    "unknown_model",
    "unknown_employer",
    "stopped_by_request",
    "objected",
    "no_valid_grant",
)
MODEL_CODE_SCHEMA = {
    "type": "string",
    "pattern": "^[-a-zA-Z0-9_]{1,60}$",
    "description": "The registered model's code, e.g. decline_likelihood.",
}
OUTPUT = {"oneOf": [{"type": "string"}, {"type": "number"}]}

SCHEMAS.update(
    {
        "InferenceCheckRequest": {
            "type": "object",
            "required": ["checks"],
            "properties": {
                "checks": {
                    "type": "array",
                    "maxItems": MAX_BATCH,
                    "items": {
                        "type": "object",
                        "required": ["student", "employer", "model"],
                        "properties": {
                            "student": STUDENT,
                            "employer": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                            "model": MODEL_CODE_SCHEMA,
                        },
                    },
                }
            },
        },
        "InferenceCheckResponse": {
            "type": "object",
            "required": ["results"],
            "properties": {
                "results": {
                    "type": "array",
                    "description": "One per check, in the order asked.",
                    "items": {
                        "type": "object",
                        "required": [
                            "student",
                            "employer",
                            "model",
                            "purpose",
                            "allowed",
                            "reason",
                            "basis",
                        ],
                        "properties": {
                            "student": {"type": "string"},
                            "employer": {"type": "integer"},
                            "model": {"type": "string"},
                            "purpose": {
                                "type": ["string", "null"],
                                "description": "The model's purpose code (null for an "
                                "unknown model): what /consents/check answers for.",
                            },
                            "allowed": {"type": "boolean"},
                            "reason": {"type": "string", "enum": list(CHECK_REASONS)},
                            "basis": {
                                "oneOf": [
                                    {
                                        "type": "object",
                                        "required": ["event_id", "granted_at"],
                                        "properties": {
                                            "event_id": {"type": "integer"},
                                            "granted_at": DATETIME,
                                        },
                                    },
                                    {"type": "null"},
                                ],
                                "description": "The grant an allowed check rests on.",
                            },
                        },
                    },
                }
            },
        },
        "DisputeChange": {
            "type": "object",
            "required": ["dispute", "event", "at", "outcome", "inference"],
            "properties": {
                "dispute": {"type": "integer", "description": "The dispute's id."},
                "event": {
                    "type": "string",
                    "enum": ["disputed", "answered"],
                    "description": "disputed: the student said the result is wrong, and it "
                    'shows "disputed" from now on; answered: staff answered (outcome).',
                },
                "at": DATETIME,
                "outcome": {
                    "type": ["string", "null"],
                    "enum": ["upheld", "not_upheld", None],
                    "description": "For answered: upheld (the result is wrong: do not use "
                    "it) or not_upheld (it stands).",
                },
                "inference": {
                    "type": "object",
                    "required": [
                        "id",
                        "student",
                        "model",
                        "model_version",
                        "employer",
                        "made_at",
                        "output",
                        "handed_over_at",
                    ],
                    "properties": {
                        "id": {"type": "string", "description": "The pipeline's id of it."},
                        "student": STUDENT,
                        "model": {"type": "string"},
                        "model_version": {"type": "string"},
                        "employer": {"type": "integer"},
                        "made_at": DATETIME,
                        "output": OUTPUT,
                        "handed_over_at": {"oneOf": [DATETIME, {"type": "null"}]},
                    },
                },
            },
        },
        "DisputesResponse": {
            "type": "object",
            "required": ["changes", "next", "has_more"],
            "properties": {
                "changes": {"type": "array", "items": ref("DisputeChange")},
                "next": {
                    "type": ["string", "null"],
                    "description": "The cursor to ask with next (null before any change).",
                },
                "has_more": {"type": "boolean"},
            },
        },
    }
)

PATHS.update(
    {
        "/inferences/check": {
            "post": {
                "operationId": "inferencesCheck",
                "summary": "May a model make a result about a student for an employer now?",
                "description": (
                    f"Up to {MAX_BATCH:,} checks, for a key with the inferences:write scope. "
                    "Answered by the rules POST /inferences applies: a live grant of the "
                    "model's purpose for that employer (the answer names the purpose, which "
                    "/consents/check also answers for), no objection by the student to the "
                    "model, and no deletion or cessation covering data of now."
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("InferenceCheckRequest")}},
                },
                "responses": {
                    "200": {
                        "description": "One result per check.",
                        "content": {"application/json": {"schema": ref("InferenceCheckResponse")}},
                    },
                    "400": error("The body is not JSON."),
                    "413": error(f"More than {MAX_BATCH:,} checks, or a body over 2.5 MB."),
                    "422": error("The JSON has the wrong shape (`field` says where)."),
                    **COMMON,
                },
            }
        },
        "/inferences/disputes": {
            "get": {
                "operationId": "inferencesDisputes",
                "summary": "The change feed of disputed results, oldest first.",
                "description": (
                    "A company's key reads the disputes of the results handed over to its "
                    "company; the pipeline's key every dispute. Each dispute is two changes: "
                    "disputed, then answered (upheld or not). Start without a cursor, then "
                    "pass next; ask again at once while has_more is true. A change appears "
                    "about five seconds after it happens. Never the student's words."
                ),
                "parameters": [
                    {
                        "name": "cursor",
                        "in": "query",
                        "description": "The next of the previous page (signed, for this key).",
                        "schema": {"type": "string", "maxLength": 200},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_CHANGES_LIMIT,
                            "default": 500,
                        },
                    },
                ],
                "responses": {
                    "200": {
                        "description": "A page of changes.",
                        "content": {"application/json": {"schema": ref("DisputesResponse")}},
                    },
                    "400": error(
                        "A cursor this key was not given, a limit out of range, or an unknown "
                        "query parameter."
                    ),
                    **COMMON,
                },
            }
        },
    }
)
