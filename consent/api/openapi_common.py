"""What the OpenAPI document's parts (openapi.py, openapi_requests.py, openapi_inferences.py)
write alike: references, JSON responses, errors, a batch call's answer."""

DATETIME = {"type": "string", "format": "date-time"}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(schema: dict, description: str, example: dict | None = None) -> dict:
    media = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"description": description, "content": {"application/json": media}}


def error(description: str, headers: dict | None = None) -> dict:
    response = json_response(ref("Error"), description)
    if headers:
        response["headers"] = headers
    return response


def batch_response(result: str, each: str) -> dict:
    """A batch call's answer: one `result` per item sent, and the counts of each outcome."""
    return {
        "type": "object",
        "required": ["results", "stored", "duplicate", "refused"],
        "properties": {
            "results": {"type": "array", "items": ref(result), "description": each},
            "stored": {"type": "integer", "minimum": 0},
            "duplicate": {"type": "integer", "minimum": 0},
            "refused": {"type": "integer", "minimum": 0},
        },
    }
