"""`corral policy explain`: the plan a policy gives a request, with every reason, offline.

Uses the same router as live traffic and `POST /v1/route/explain`, with no live statistics
(priors only), so an SRE can see what a policy file does before loading it. By default every
provider Corral knows is assumed configured, over the shipped catalogue and price book; with
`--config` (the file `corral serve --config` takes, and the environment, as the gateway reads
them) the plan is over what that gateway would route: its providers, its catalogue rows and
overrides, its price book and pool price. Against a running gateway, use
`POST /v1/route/explain` for the plan with live health and latency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from gateway.api.explain import plan_to_json
from gateway.api.parse import parse_chat
from gateway.cli.tables import offline_tables
from gateway.errors import GatewayError
from gateway.live.state import LiveState
from gateway.routing.planner import plan
from gateway.routing.policy.load import PolicyError, load_policy

IMAGE = "data:image/png;base64,iVBORw0KGgo="


def _body(model: str, prompt_tokens: int, max_tokens: int | None, features: list[str], tags: dict[str, str]) -> Any:
    content: Any = "x" * (prompt_tokens * 4)
    if "images" in features:
        content = [{"type": "text", "text": content}, {"type": "image_url", "image_url": {"url": IMAGE}}]
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "corral": {"tags": tags},
    }
    if max_tokens:
        body["max_tokens"] = max_tokens
    if "stream" in features:
        body["stream"] = True
    if "tools" in features:
        body["tools"] = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    if "json_schema" in features:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {}}}
    return body


def explain_command(
    policy: Annotated[Path, typer.Argument(help="Policy file.")],
    model: Annotated[str, typer.Option(help="Model or alias the client asks for.")] = "llama-4-scout",
    prompt_tokens: Annotated[int, typer.Option(help="Prompt size in tokens.")] = 500,
    max_tokens: Annotated[int | None, typer.Option(help="max_tokens the client sets.")] = None,
    feature: Annotated[list[str], typer.Option(help="tools, images, json_schema or stream (repeatable).")] = [],  # noqa: B006
    tag: Annotated[list[str], typer.Option(help="Request tag KEY=VALUE (repeatable), e.g. team=search.")] = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="The plan as JSON (for scripts) instead of a table.")] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="The gateway's config file: plan over its providers, catalogue and prices."),
    ] = None,
) -> None:
    """Print the plan POLICY gives a request: candidates in order with figures, and why the rest were dropped."""
    try:
        the_policy = load_policy(policy)
    except (PolicyError, OSError) as exc:
        typer.echo(f"{policy}: {exc}", err=True)
        raise typer.Exit(2) from exc
    tags = dict(t.split("=", 1) for t in tag if "=" in t)
    catalogue, prices, available = offline_tables(config, "corral policy explain")
    try:
        req = parse_chat(orjson.dumps(_body(model, prompt_tokens, max_tokens, feature, tags)), catalogue, "explain")
    except GatewayError as exc:
        typer.echo(f"corral policy explain: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    state = LiveState(available=available)
    the_plan = plan(req, catalogue.deployments(req.model), prices, state.view(), lambda r, d: None, the_policy)
    shown = plan_to_json(the_plan, {})
    if as_json:
        typer.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_plan(shown)


def _print_plan(shown: dict[str, Any]) -> None:
    """The plan as an SRE reads it: the rule and objective, candidates in order, then the drops."""
    console = Console()
    objective = shown["objective"]
    slo = f", TTFT SLO {objective['max_ttft_ms']} ms" if objective.get("max_ttft_ms") else ""
    rule = shown["rule"] or "(defaults)"
    console.print(f"model {shown['model']}: rule {rule}, prefer {objective['prefer']}{slo}")
    if shown["rejected"]:
        console.print(f"rejected by the policy: {shown['rejected']}")
    if shown.get("hedge"):
        console.print(shown["hedge"]["reason"])
    plan = Table("#", "provider", "model id", "expected cost USD", "TTFT ms", "total ms", "meets SLO")
    for row in shown["plan"]:
        meets = row.get("meets_slo")
        plan.add_row(
            str(row["rank"]),
            row["provider"],
            row["model_id"],
            row["expected_cost_usd"],
            str(row.get("expected_ttft_ms", "")),
            str(row.get("expected_latency_ms", "")),
            "-" if meets is None else ("yes" if meets else "no"),
        )
    console.print(plan)
    dropped = Table("dropped", "model id", "why")
    for row in shown["dropped"]:
        dropped.add_row(row["provider"], row["model_id"], row["reason"])
    if shown["dropped"]:
        console.print(dropped)
