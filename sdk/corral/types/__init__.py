"""The SDK's own wire models: plain dataclasses, no pydantic needed."""

from corral.types.chat import ChatCompletion, ChatCompletionMessage, Choice, FunctionCall, ToolCall, Usage
from corral.types.chunk import (
    ChatCompletionChunk,
    ChoiceDelta,
    ChoiceDeltaFunction,
    ChoiceDeltaToolCall,
    ChunkChoice,
)
from corral.types.corral import CorralInfo, Prefer, ProviderPrefs, ToolValidationMode, ToolValidationOutcome
from corral.types.explain import DroppedCandidate, PlanStep, RouteExplanation
from corral.types.models import Model, ModelList
from corral.types.spend import SpendReport, SpendRow

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "Choice",
    "ChoiceDelta",
    "ChoiceDeltaFunction",
    "ChoiceDeltaToolCall",
    "ChunkChoice",
    "CorralInfo",
    "DroppedCandidate",
    "FunctionCall",
    "Model",
    "ModelList",
    "PlanStep",
    "Prefer",
    "ProviderPrefs",
    "RouteExplanation",
    "SpendReport",
    "SpendRow",
    "ToolCall",
    "ToolValidationMode",
    "ToolValidationOutcome",
    "Usage",
]
