"""Shape checks on OpenAI request bodies, done at the edge before anything is forwarded.

Only the fields the router and vLLM depend on are checked, with vLLM's own ranges (so a
request vLLM would accept is never refused here); unknown fields pass through untouched,
because vLLM's sampling extensions (``top_k``, ``min_p``, ``guided_json``...) live there.
:func:`validate` is pure: body in, the first problem (or None) out. ``param`` uses OpenAI's
spelling, e.g. ``messages[0].content`` or ``tools[1].function.name``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CHAT_PATH", "COMPLETIONS_PATH", "Invalid", "validate"]

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_CONTENT_OPTIONAL = frozenset({"assistant", "function"})  # assistant turns may carry only tool_calls


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why a body was refused: OpenAI's ``param`` and a message that says how to fix it."""

    param: str
    message: str
    code: str = "invalid_value"


def _type_error(param: str, expected: str, value: object) -> Invalid:
    return Invalid(param, f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.",
                   "invalid_type")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


Check = Callable[[str, Any], Invalid | None]


def _int_at_least(low: int) -> Check:
    def check(param: str, value: Any) -> Invalid | None:
        if value is None:
            return None
        if not _is_int(value):
            return _type_error(param, "an integer", value)
        if value < low:
            return Invalid(param, f"Invalid '{param}': {value} is below the minimum of {low}.")
        return None
    return check


def _number_in(low: float, high: float, low_open: bool = False) -> Check:
    def check(param: str, value: Any) -> Invalid | None:
        if value is None:
            return None
        if not _is_number(value):
            return _type_error(param, "a number", value)
        if value < low or (low_open and value == low) or value > high:
            bounds = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high != math.inf else "")
            return Invalid(param, f"Invalid '{param}': {value} must be {bounds}.")
        return None
    return check


def _optional(kind: type, expected: str) -> Check:
    def check(param: str, value: Any) -> Invalid | None:
        if value is None or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
            return None
        return _type_error(param, expected, value)
    return check


def _stop(param: str, value: Any) -> Invalid | None:
    if value is None or isinstance(value, str):
        return None
    if not isinstance(value, list):
        return _type_error(param, "a string or an array of strings", value)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            return _type_error(f"{param}[{i}]", "a string", item)
    return None


def _stream_options(param: str, value: Any) -> Invalid | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return _type_error(param, "an object", value)
    for key in ("include_usage", "continuous_usage_stats"):
        flag = value.get(key)
        if flag is not None and not isinstance(flag, bool):
            return _type_error(f"{param}.{key}", "a boolean", flag)
    return None


def _tools(param: str, value: Any) -> Invalid | None:
    if value is None:
        return None
    if not isinstance(value, list):
        return _type_error(param, "an array of objects", value)
    for i, tool in enumerate(value):
        where = f"{param}[{i}]"
        if not isinstance(tool, dict):
            return _type_error(where, "an object", tool)
        kind = tool.get("type", "function")
        if not isinstance(kind, str):
            return _type_error(f"{where}.type", "a string", kind)
        if kind != "function":
            continue
        function = tool.get("function")
        if not isinstance(function, dict):
            return _type_error(f"{where}.function", "an object", function)
        name = function.get("name")
        if not isinstance(name, str) or not name:
            return (_type_error(f"{where}.function.name", "a string", name) if not isinstance(name, str)
                    else Invalid(f"{where}.function.name", f"'{where}.function.name' must not be empty."))
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            return _type_error(f"{where}.function.parameters", "an object", parameters)
    return None


def _content_part(param: str, part: Any) -> Invalid | None:
    if not isinstance(part, dict):
        return _type_error(param, "an object", part)
    kind = part.get("type")
    if not isinstance(kind, str):
        return _type_error(f"{param}.type", "a string", kind)
    if kind == "text" and not isinstance(part.get("text"), str):
        return _type_error(f"{param}.text", "a string", part.get("text"))
    return None


def _message(param: str, message: Any) -> Invalid | None:
    if not isinstance(message, dict):
        return _type_error(param, "an object", message)
    role = message.get("role")
    if not isinstance(role, str):
        return _type_error(f"{param}.role", "a string", role)
    if role not in ROLES:
        return Invalid(f"{param}.role", f"Invalid value for '{param}.role': {role!r}; supported values are "
                       f"{', '.join(sorted(ROLES))}.")
    content = message.get("content")
    if isinstance(content, str):
        return None
    if content is None:
        if role in _CONTENT_OPTIONAL:
            return None
        return Invalid(f"{param}.content", f"Missing required parameter: '{param}.content'.",
                       "missing_required_parameter")
    if not isinstance(content, list):
        return _type_error(f"{param}.content", "a string or an array of content parts", content)
    for i, part in enumerate(content):
        problem = _content_part(f"{param}.content[{i}]", part)
        if problem is not None:
            return problem
    return None


def _messages(param: str, value: Any) -> Invalid | None:
    if not isinstance(value, list):
        return _type_error(param, "an array of message objects", value)
    if not value:
        return Invalid(param, f"'{param}' must contain at least one message.")
    for i, message in enumerate(value):
        problem = _message(f"{param}[{i}]", message)
        if problem is not None:
            return problem
    return None


def _prompt(param: str, value: Any) -> Invalid | None:
    if isinstance(value, str):
        return None
    expected = "a string, an array of strings or an array of token ids"
    if not isinstance(value, list):
        return _type_error(param, expected, value)
    if not value:
        return Invalid(param, f"'{param}' must not be an empty array.")
    first = value[0]
    if isinstance(first, str):
        element: Callable[[object], bool] = lambda x: isinstance(x, str)  # noqa: E731
        what = "a string"
    elif _is_int(first):
        element, what = _token_id, "a token id (integer >= 0)"
    elif isinstance(first, list):
        element, what = _token_ids, "a non-empty array of token ids"
    else:
        return _type_error(f"{param}[0]", expected, first)
    for i, item in enumerate(value):
        if not element(item):
            return Invalid(f"{param}[{i}]", f"Invalid '{param}[{i}]': expected {what}, like '{param}[0]'.",
                           "invalid_type")
    return None


def _token_id(value: object) -> bool:
    return _is_int(value) and value >= 0  # type: ignore[operator]


def _token_ids(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(_token_id(x) for x in value)


_COMMON: dict[str, Check] = {
    "max_tokens": _int_at_least(1),
    "n": _int_at_least(1),
    "temperature": _number_in(0.0, math.inf),
    "top_p": _number_in(0.0, 1.0, low_open=True),
    "presence_penalty": _number_in(-2.0, 2.0),
    "frequency_penalty": _number_in(-2.0, 2.0),
    "seed": _optional(int, "an integer"),
    "stream": _optional(bool, "a boolean"),
    "stream_options": _stream_options,
    "stop": _stop,
    "user": _optional(str, "a string"),
    "tools": _tools,
}
_CHAT: dict[str, Check] = {**_COMMON, "messages": _messages, "max_completion_tokens": _int_at_least(1),
                           "logprobs": _optional(bool, "a boolean"), "top_logprobs": _int_at_least(0)}
_COMPLETIONS: dict[str, Check] = {**_COMMON, "prompt": _prompt, "logprobs": _int_at_least(0),
                                  "echo": _optional(bool, "a boolean"),
                                  "max_tokens": _int_at_least(0)}  # 0 with echo: prompt logprobs only
_REQUIRED = {CHAT_PATH: ("messages",), COMPLETIONS_PATH: ("prompt",)}
_CHECKS = {CHAT_PATH: _CHAT, COMPLETIONS_PATH: _COMPLETIONS}


def validate(path: str, body: dict[str, Any]) -> Invalid | None:
    """The first problem with ``body`` for the endpoint at ``path``, or None if it may be forwarded."""
    checks = _CHECKS[path]
    for name in _REQUIRED[path]:
        if name not in body and not (name == "prompt" and "prompt_embeds" in body):
            return Invalid(name, f"Missing required parameter: '{name}'.", "missing_required_parameter")
    for name, value in body.items():
        check = checks.get(name)
        if check is not None:
            problem = check(name, value)
            if problem is not None:
                return problem
    if body.get("stream_options") is not None and body.get("stream") is not True:
        return Invalid("stream_options", "'stream_options' is only allowed when 'stream' is true.")
    return None
