"""`POST /inferences` in the OpenAPI document (the view is disclosure/api.py, the service
inferences/services/intake.py). A part of the one document, which openapi.py assembles; kept
apart only for length.

The refusal codes are written out here because consent imports no inferences module;
tests/inferences/test_api.py checks them against what the service answers.
"""

from consent.api.payloads import (
    MAX_BATCH,
    MAX_ID,
    MAX_IDEMPOTENCY_KEY,
    MAX_OUTPUT_LABEL,
    MAX_RECORD_ID,
)

DATETIME = {"type": "string", "format": "date-time"}
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
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
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
            "inferences": {"type": "array", "maxItems": MAX_BATCH, "items": _ref("Inference")},
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
                        "the grant). 422: unknown_student, unknown_model, unknown_employer, "
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
    "InferencesResponse": {
        "type": "object",
        "required": ["results", "stored", "duplicate", "refused"],
        "properties": {
            "results": {
                "type": "array",
                "items": _ref("InferenceResult"),
                "description": "One per result, in the order sent.",
            },
            "stored": {"type": "integer", "minimum": 0},
            "duplicate": {"type": "integer", "minimum": 0},
            "refused": {"type": "integer", "minimum": 0},
        },
    },
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
                "content": {"application/json": {"schema": _ref("InferencesRequest")}},
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
                    "content": {"application/json": {"schema": _ref("InferencesResponse")}},
                },
                "400": _error("The body is not JSON, or a malformed Idempotency-Key."),
                "413": _error(f"More than {MAX_BATCH:,} results, or a body over 2.5 MB."),
                "422": _error(
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
