"""`previous_response_id` across gateway processes: two `corral serve` processes share one
ledger database (SQLite file, or PostgreSQL); a conversation begun on one continues on the
other with the official openai client, plain and streamed, and another API key cannot
continue it (404, as for an id that never existed)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import openai
import pytest
from openai import OpenAI
from sqlalchemy import select

from gateway.keys.model import hash_key, key_id_for
from gateway.metering.responses_sql import responses
from gateway.metering.sql import SqlStore
from tests.support import free_port, wait_ready

ALICE = "sk-replicas-alice-0123456789"
BOB = "sk-replicas-bob-0123456789"
MODEL = "llama-4-maverick"
ONLY = {"corral": {"providers": {"only": ["deepinfra"]}}}


@contextmanager
def serve(workdir: Path, database_url: str) -> Iterator[str]:
    workdir.mkdir()
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "CORRAL_CONFIG": "", "CORRAL_API_KEYS": f"{ALICE},{BOB}"}
    command = [sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=workdir, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(params=["sqlite", "postgresql"])
def two_gateways(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_schema_url")
    with ExitStack() as stack:
        first = stack.enter_context(serve(tmp_path / "a", url))
        second = stack.enter_context(serve(tmp_path / "b", url))
        yield first, second, url


def client(url: str, key: str) -> OpenAI:
    return OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=30)


def test_a_conversation_continues_on_another_process_for_its_own_key_only(two_gateways: tuple[str, str, str]) -> None:
    one, two, database = two_gateways
    start = client(one, ALICE).responses.create(
        model=MODEL, instructions="Be brief.", input="My name is Ada.", extra_body=ONLY
    )
    fresh = client(two, ALICE).responses.create(model=MODEL, input="What is my name?", extra_body=ONLY)
    follow = client(two, ALICE).responses.create(
        model=MODEL, input="What is my name?", previous_response_id=start.id, extra_body=ONLY
    )
    assert follow.status == "completed" and follow.previous_response_id == start.id
    assert follow.usage is not None and fresh.usage is not None and start.usage is not None
    # The stored turn went to the backend first: the prompt holds it (instructions are not carried over).
    assert follow.usage.input_tokens > fresh.usage.input_tokens

    with pytest.raises(openai.NotFoundError) as caught:
        client(two, BOB).responses.create(model=MODEL, input="And mine?", previous_response_id=start.id)
    assert caught.value.param == "previous_response_id"

    with client(one, ALICE).responses.stream(
        model=MODEL, input="Thanks!", previous_response_id=follow.id, extra_body=ONLY
    ) as stream:
        streamed = stream.get_final_response()
    third = client(two, ALICE).responses.create(
        model=MODEL, input="Bye.", previous_response_id=streamed.id, extra_body=ONLY
    )
    assert third.usage is not None and streamed.usage is not None
    assert third.usage.input_tokens > streamed.usage.input_tokens

    ledger = SqlStore(database)
    with ledger.engine.connect() as connection:
        rows = {r.id: r for r in connection.execute(select(responses))}
    ledger.close()
    alice = key_id_for(hash_key(ALICE))
    assert {rows[r.id].scope for r in (start, follow, streamed, third)} == {alice}
    assert [m["role"] for m in rows[third.id].messages] == ["user", "assistant"] * 4
    assert rows[third.id].messages[0] == {"role": "user", "content": "My name is Ada."}
    assert not any(ALICE in str(r.messages) or ALICE in r.scope for r in rows.values()), "the key is never stored"
