from corral.resources.chat import AsyncChat, AsyncCompletions, Chat, Completions
from corral.resources.models import AsyncModels, Models

__all__ = ["AsyncChat", "AsyncCompletions", "AsyncModels", "Chat", "Completions", "Models"]
