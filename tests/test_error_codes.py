"""One table of client-facing error codes (`gateway.errors.SHAPES`): every code the gateway
sends is in it, sent with the status and type it states, and known to the SDK."""

from __future__ import annotations

import ast
from pathlib import Path

from corral._errors import _BY_CODE, _class_for

from gateway.errors import SHAPES, Code

GATEWAY = Path(__file__).resolve().parent.parent / "gateway"
#: Fakes speak the providers' dialects and adapters parse them: their codes are the providers'.
PROVIDER_SIDE = ("fakes", "providers")
CONSTRUCTORS = {"GatewayError", "error", "bad_request"}


def _gateway_sources() -> list[Path]:
    return [p for p in GATEWAY.rglob("*.py") if p.relative_to(GATEWAY).parts[0] not in PROVIDER_SIDE]


def _code_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Code":
        return Code[node.attr].value
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def test_every_code_has_a_shape() -> None:
    assert set(SHAPES) == set(Code)


def test_no_code_is_written_as_a_string_literal() -> None:
    literals = []
    for path in _gateway_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) in CONSTRUCTORS):
                continue
            for kw in node.keywords:
                if kw.arg == "code" and isinstance(kw.value, ast.Constant):
                    literals.append(f"{path.relative_to(GATEWAY)}:{kw.value.lineno}: {kw.value.value!r}")
    assert literals == []


def test_gateway_errors_use_the_status_and_type_of_their_code() -> None:
    wrong = []
    for path in _gateway_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "GatewayError"):
                continue
            kw = {k.arg: k.value for k in node.keywords}
            code = _code_of(kw["code"]) if "code" in kw else None
            status = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
            if code is None or status is None:
                continue
            kind = kw["type"].value if isinstance(kw.get("type"), ast.Constant) else "invalid_request_error"
            if SHAPES[Code(code)] != (status, kind):
                wrong.append(f"{path.relative_to(GATEWAY)}:{node.lineno}: {code} sent as {status} {kind}")
    assert wrong == []


def test_the_sdk_knows_every_code_with_its_status() -> None:
    for code, (status, _) in SHAPES.items():
        assert code.value in _BY_CODE, f"the SDK's error table lacks {code.value}"
        assert _BY_CODE[code.value][0] == status, code
        assert _class_for(status, code.value) is _BY_CODE[code.value][1]
