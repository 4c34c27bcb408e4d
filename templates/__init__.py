"""Message templates: the built-in examples (``*.j2``) and the sandboxed Jinja code around them."""

from pathlib import Path

from templates.context import CONTEXT_NAMES, build_context
from templates.environment import make_environment
from templates.message import MessageTemplate, RenderedMessage

#: The folder of the built-in example templates (copied by ``campaign init``).
BUILTIN_FOLDER = Path(__file__).resolve().parent

__all__ = [
    "BUILTIN_FOLDER",
    "CONTEXT_NAMES",
    "MessageTemplate",
    "RenderedMessage",
    "build_context",
    "make_environment",
]
