"""Every change to the register of models and inferences goes through these functions."""

from inferences.services.disputes import (
    DisputeRefused,
    inference_dispute,
    inference_dispute_answer,
)
from inferences.services.erasure import inferences_erase
from inferences.services.intake import (
    DUPLICATE,
    REFUSED,
    STORED,
    Coverage,
    InferenceOutcome,
    inferences_record,
)
from inferences.services.objections import inference_model_object
from inferences.services.registry import inference_model_activate

__all__ = [
    "DUPLICATE",
    "REFUSED",
    "STORED",
    "Coverage",
    "DisputeRefused",
    "InferenceOutcome",
    "inference_dispute",
    "inference_dispute_answer",
    "inference_model_activate",
    "inference_model_object",
    "inferences_erase",
    "inferences_record",
]
