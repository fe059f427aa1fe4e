"""Tool calls that always parse and validate (issue #4). Pure: no I/O, no clock.

For a request with `tools` or a `response_format`, every answer is checked: each call
names a declared function, its arguments parse as a JSON object and validate against
the function's schema (the schema's own draft, formats checked); tool_choice and
parallel_tool_calls are honoured; response_format content parses and validates.
Calls that Llama 4 wrote as text (pythonic, JSON, `<function=…>` tags) become real
`tool_calls`; broken syntax is repaired when that needs no guessing; otherwise the same
deployment is re-asked with the validator's errors.

The API, in the order the dispatch loop uses it::

    contract = prepare(body)          # before planning: GatewayError 400 invalid_tool_schema
    guard = ToolGuard(contract, mode=settings.tool_calls.mode, reasks=settings.tool_calls.reasks)

Non-streamed, per attempt::

    decision = guard.check(completion.body)
    if decision.action is Action.DELIVER:
        completion.body = decision.body                  # repaired / recognised calls
    elif decision.action is Action.REASK:                # same deployment, new messages
        retry_body = {**body, "messages": guard.reask_messages(body["messages"], decision.attempt)}
        if provider.constrains_reasks:                    # valid by construction
            retry_body |= guard.constraint(decision.attempt) or {}
        ...call the same deployment with retry_body, then guard.check(...) again...
    else:                                                # Action.FAIL
        raise guard.failure()                            # 502 tool_call_validation_failed
    headers["x-corral-tool-calls"] = guard.verdict       # valid | repaired | retried:N | invalid | not_applicable

Streamed (the gate holds back only what it must; `feed` may return no chunks)::

    gate = StreamGate(guard)
    async for chunk in upstream:
        for out in gate.feed(chunk):
            yield out                                    # content live; each call once complete and valid
    end = gate.finish()
    if end.action is Action.DELIVER:
        for out in end.chunks: yield out                 # remaining calls, held text, finish_reason chunk
    elif end.action is Action.REASK:                     # nothing sent is taken back
        messages = guard.reask_messages(body["messages"], end.attempt)
        gate = gate.next()                               # open a new upstream stream and feed this gate
    else:
        ...send guard.failure() as an SSE error event...

`guard.errors` lists the validation errors per attempt (`where: what` strings, e.g.
`tool_calls[0] (get_weather): $.unit: 'k' is not one of ['c', 'f']`). Modes: `off`
(nothing checked), `report` (checked, delivered exactly as received, the verdict flags
it), `repair` (recognise and repair; FAIL when that is not enough), `retry` (the
default: repair, then re-ask up to `reasks` times; no re-ask after finish_reason
`length` or `content_filter`, which would only fail the same way).

Modules: `contract` (request side, 400s), `schemas` (compiled-validator LRU) and
`fastpath` (a sound shortcut for common schemas), `calls` and `validate` (the checks),
`scan` and `repair` (syntax-only repair), `pythonic` and `recognise` (calls written as
text), `reask`, `guard`, `stream_gate`, `model` (the result types). The serving path
calls `guard.acheck` and `gate.settle()`: `cost` estimates a check and `fence` runs a
costly one in a validation process under a CPU budget (the only part that is not pure).
"""

from gateway.toolcalls.contract import Choice, Contract, prepare
from gateway.toolcalls.guard import Decision, ToolGuard
from gateway.toolcalls.model import Action, Attempt, CallCheck, Mode, new_call_id
from gateway.toolcalls.reask import reask_messages, structured_constraint
from gateway.toolcalls.schemas import DEFAULT_CACHE, CompiledSchema, InvalidSchema, SchemaCache
from gateway.toolcalls.stream_gate import GateEnd, StreamGate
from gateway.toolcalls.validate import check_message

__all__ = [
    "DEFAULT_CACHE",
    "Action",
    "Attempt",
    "CallCheck",
    "Choice",
    "CompiledSchema",
    "Contract",
    "Decision",
    "GateEnd",
    "InvalidSchema",
    "Mode",
    "SchemaCache",
    "StreamGate",
    "ToolGuard",
    "check_message",
    "new_call_id",
    "prepare",
    "reask_messages",
    "structured_constraint",
]
