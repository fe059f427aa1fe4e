"""`corral report spend|requests`, `corral prices` and `corral reconcile` on a seeded ledger."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gateway.cli.main import app
from gateway.metering.render import NO_VALUE
from gateway.metering.sql import SqlStore
from tests.metering.factory import event, failed
from tests.metering.seed import seed

runner = CliRunner()
SPAN = ["--from", "2026-11-01", "--to", "2026-11-02"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    SqlStore(url).write(seed())
    return {"DATABASE_URL": url, "CORRAL_CONFIG": ""}


def corral(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_table_csv_and_json_show_the_same_figures(env: dict[str, str], tmp_path: Path) -> None:
    code, out = corral(env, "report", "spend", *SPAN, "--by", "provider,day", "--format", "json")
    assert code == 0, out
    data = json.loads(out)
    totals = tmp_path / "totals.csv"
    code, out_csv = corral(
        env, "report", "spend", *SPAN, "--by", "provider,day", "--format", "csv", "--totals", str(totals)
    )
    lines = list(csv.DictReader(io.StringIO(out_csv)))
    assert lines == [{k: "" if v is None else str(v) for k, v in row.items()} for row in data["rows"]]
    # Data rows only: summing the column gives the total, once.
    assert sum(Decimal(line["cost_usd"]) for line in lines) == Decimal(data["total_cost_usd"]) == Decimal("0.25162")
    (total,) = csv.DictReader(io.StringIO(totals.read_text()))
    assert (total["from"], total["to"], total["cost_usd"], total["requests"]) == (*SPAN[1::2], "0.25162", "6")
    code, table = corral(env, "report", "spend", *SPAN, "--by", "provider,day")
    # Tables round money to cents; CSV and JSON keep it exact.
    assert code == 0 and "0.25 " in table and "0.000267" not in table and "Self-hosted pool (vllm)" in table
    assert "rounded to cents" in table


def test_no_team_has_one_label_everywhere(env: dict[str, str]) -> None:
    _code, out = corral(env, "report", "spend", *SPAN, "--by", "team", "--format", "json")
    teams = [row["team"] for row in json.loads(out)["rows"]]
    _code, out_csv = corral(env, "report", "spend", *SPAN, "--by", "team", "--format", "csv")
    assert [line["team"] for line in csv.DictReader(io.StringIO(out_csv))] == teams
    assert NO_VALUE in teams and None not in teams
    _code, table = corral(env, "report", "spend", *SPAN, "--by", "team")
    assert NO_VALUE in table


def test_the_pool_fixed_cost_is_the_period_s_own_rounded_and_per_team(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "corral.yaml"
    config.write_text(yaml.safe_dump({"providers": {"vllm": {"vllm": {"gpus": 8, "gpu_hour_usd": "2.4123"}}}}))
    args = ["report", "spend", "--from", "2026-11-01", "--to", "2026-11-30", "--config", str(config)]
    code, out = corral(env, *args, "--format", "json")
    pool = json.loads(out)["pool"]
    # 8 GPUs x 2.4123 USD x 720 h, whenever the report is run.
    assert (pool["hours"], pool["fixed_cost_usd"], pool["to_now"]) == ("720.00", "13894.848", False)
    code, table = corral(env, *args)
    table = " ".join(table.split())  # titles wrap at the table's width
    assert "= 13,894.85 USD fixed" in table and "13894.848" not in table and "to now" not in table
    code, out = corral(env, *args, "--team", "search", "--format", "json")
    team = json.loads(out)["pool"]
    # search sent all 2M of the pool's tokens (r3): its share is the whole pool.
    assert team["team"] == "search" and team["team_share_of_tokens"] == "1.00"
    code, out = corral(env, *args, "--team", "ads", "--format", "json")
    ads = json.loads(out)["pool"]
    assert ads["fixed_cost_usd"] == "0.00" and ads["pool_fixed_cost_usd"] == "13894.848"
    future = ["report", "spend", "--from", "2026-11-01", "--to", "2999-12-31", "--config", str(config)]
    code, out = corral(env, *future, "--format", "json")
    assert code == 2 and "at most" in out
    code, table = corral(env, "report", "spend", "--from", "2026-12-01", "--to", "2027-01-31", "--config", str(config))
    assert "(to now: the period has not ended)" in " ".join(table.split())


def test_what_ifs_from_the_cli(env: dict[str, str], tmp_path: Path) -> None:
    code, out = corral(env, "report", "spend", "--from", "2026-11-01", "--as-provider", "groq", "--format", "json")
    assert code == 0 and json.loads(out)["total_cost_usd"] == "0.450445"
    book = tmp_path / "flat.yaml"
    entries = [
        {"provider": p, "model": m, "effective": "2026-01-01", "input": "1", "output": "1"}
        for p in ("groq", "together", "vllm")
        for m in ("llama-4-scout", "llama-4-maverick")
    ]
    book.write_text(yaml.safe_dump({"prices": entries}))
    code, out = corral(env, "report", "spend", *SPAN, "--reprice", str(book), "--format", "json")
    assert code == 0 and json.loads(out)["pricing"] == f"reprice: {book}"
    code, out = corral(env, "report", "spend", *SPAN, "--reprice", str(book), "--as-provider", "groq")
    assert code == 2 and "not both" in out


def test_bad_report_options_are_refused(env: dict[str, str]) -> None:
    code, out = corral(env, "report", "spend", "--from", "2026-11-02", "--to", "2026-11-01")
    assert code == 2 and "before" in out
    code, out = corral(env, "report", "spend", "--from", "2026-11-01", "--by", "colour")
    assert code == 2 and "choose distinct keys" in out


def test_requests_drill_down(env: dict[str, str]) -> None:
    code, out = corral(env, "report", "requests", *SPAN, "--team", "ads")
    assert code == 0
    assert [json.loads(line)["request_id"] for line in out.splitlines()] == ["r6", "r2"]


def test_requests_run_to_today_as_the_readme_writes_them(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["report", "requests", "--from", "2026-11-01", "--provider", "groq"], env=env)
    assert result.exit_code == 0, result.output
    ids = {json.loads(line)["request_id"] for line in result.stdout.splitlines()}
    assert ids == {"r1", "r2", "r4", "r5", "r6"}
    assert result.stderr == ""


def test_requests_say_when_the_limit_cut_rows(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["report", "requests", *SPAN, "--limit", "2"], env=env)
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 2
    assert "showing the newest 2 requests" in result.stderr and "more match" in result.stderr
    whole = runner.invoke(app, ["report", "requests", *SPAN, "--limit", "6"], env=env)
    assert len(whole.stdout.splitlines()) == 6 and whole.stderr == ""


@pytest.mark.parametrize(
    "command",
    [
        ["report", "spend", "--from", "2026-11-01"],
        ["report", "requests", "--from", "2026-11-01"],
        ["reconcile", "--provider", "groq", "--file", "export.csv", "--from", "2026-11-01", "--to", "2026-11-01"],
    ],
)
def test_no_ledger_in_sight_is_said_not_invented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "export.csv").write_text("date,model,input_tokens,output_tokens,cost_usd\n")
    result = runner.invoke(app, command, env={"CORRAL_CONFIG": "", "DATABASE_URL": ""})
    assert result.exit_code == 2, result.output
    assert f"no ledger at {tmp_path / 'corral.db'}" in result.stderr
    assert not (tmp_path / "corral.db").exists()


def test_prices_in_force_on_a_day(env: dict[str, str], tmp_path: Path) -> None:
    code, out = corral(env, "prices", "--at", "2026-11-01", "--format", "json")
    assert code == 0
    groq = {(p["provider"], p["model"]): p for p in json.loads(out)["prices"]}[("groq", "llama-4-scout")]
    assert (groq["input"], groq["output"]) == ("0.11", "0.34")
    code, out = corral(env, "prices", "--at", "2026-11-01")
    assert code == 0 and "deepinfra" in out and "gpu_hours" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "prices:\n  - {provider: groq, model: llama-4-scout, effective: 2026-01-01, input: 0.1, output: '1'}\n"
    )
    code, out = corral(env, "prices", "--file", str(bad))
    assert code == 2 and "write prices as strings" in out and "bad.yaml" in out


def _export(tmp_path: Path, rows: list[str], header: str) -> Path:
    path = tmp_path / "export.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_reconcile_agrees_within_tolerance(env: dict[str, str], tmp_path: Path) -> None:
    export = _export(
        tmp_path,
        [
            "2026-11-01,meta-llama/llama-4-scout-17b-16e-instruct,1500,300,0.000267",
            "2026-11-02,meta-llama/llama-4-maverick-17b-128e-instruct,4100,180,0.000928",
            "2026-11-02,meta-llama/llama-4-scout-17b-16e-instruct,1000,50,0.000127",
        ],
        "date,model_id,input_tokens,output_tokens,cost_usd",
    )
    code, out = corral(env, "reconcile", "--provider", "groq", "--file", str(export))
    assert code == 0, out
    assert "agrees" in out


def test_reconcile_lists_what_disagrees(env: dict[str, str], tmp_path: Path) -> None:
    export = _export(
        tmp_path,
        [
            "2026-11-01,llama-4-scout,1500,300,0.75",
            "2026-11-02,llama-4-maverick,4100,180,0.000928",
            "2026-11-03,llama-4-scout,10,10,0.50",
        ],
        "date,model,input_tokens,output_tokens,cost_usd",
    )
    code, out = corral(
        env, "reconcile", "--provider", "groq", "--file", str(export), "--to", "2026-11-03", "--format", "json"
    )
    assert code == 1
    lines = {(d["day"], d["model"]): d for d in json.loads(out)["disagreements"]}
    assert lines[("2026-11-01", "llama-4-scout")]["difference_usd"] == "0.749733"
    day1 = lines[("2026-11-01", "llama-4-scout")]
    # groq's ledger row r1 is 1,000/200 tokens and r2's billed try 500/100: 1,500/300, as exported.
    assert (day1["reason"], day1["detail"]) == ("cost", "cost: ledger 0.000267 USD, export 0.75 USD")
    assert lines[("2026-11-02", "llama-4-scout")]["reason"] == "only in the ledger"
    assert lines[("2026-11-03", "llama-4-scout")]["reason"] == "only in the export"
    assert "no ledger row" in lines[("2026-11-03", "llama-4-scout")]["detail"]
    assert ("2026-11-02", "llama-4-maverick") not in lines


def test_reconcile_reads_an_aws_cost_and_usage_report(env: dict[str, str], tmp_path: Path) -> None:
    SqlStore(env["DATABASE_URL"]).write([])
    export = _export(
        tmp_path,
        [
            "2026-11-01T00:00:00Z,AmazonBedrock,USE1-Llama4Scout17B-input-tokens,1000,0.00017",
            "2026-11-01T00:00:00Z,AmazonBedrock,USE1-Llama4Scout17B-output-tokens,200,0.000132",
            "2026-11-01T00:00:00Z,AmazonBedrock,USE1-Claude-input-tokens,5,1.00",
            "2026-11-01T00:00:00Z,AmazonEC2,BoxUsage:m5.large,24,2.30",
        ],
        "line_item_usage_start_date,line_item_product_code,line_item_usage_type,line_item_usage_amount,"
        "line_item_unblended_cost",
    )
    code, out = corral(env, "reconcile", "--provider", "bedrock", "--file", str(export), "--format", "json")
    assert code == 1
    (line,) = json.loads(out)["disagreements"]
    assert (line["model"], line["export_cost_usd"], line["reason"]) == (
        "llama-4-scout",
        "0.000302",
        "only in the export",
    )


def test_reconcile_compares_the_tokens_of_a_cost_and_usage_report(env: dict[str, str], tmp_path: Path) -> None:
    """The cost agrees to the cent, the output tokens do not: the line says so."""
    served = failed("bedrock", error_kind=None, status=200)
    SqlStore(env["DATABASE_URL"]).write(
        [event("b1", provider="bedrock", model_id="meta.llama4-scout", cost_usd=Decimal("0.0003"), attempts=(served,))]
    )
    export = _export(
        tmp_path,
        [
            "2026-11-01T00:00:00Z,AmazonBedrock,USE1-Llama4Scout17B-input-tokens,1000,0.00017",
            "2026-11-01T00:00:00Z,AmazonBedrock,USE1-Llama4Scout17B-output-tokens,260,0.00013",
        ],
        "line_item_usage_start_date,line_item_product_code,line_item_usage_type,line_item_usage_amount,"
        "line_item_unblended_cost",
    )
    code, out = corral(env, "reconcile", "--provider", "bedrock", "--file", str(export), "--format", "json")
    assert code == 1, out
    (line,) = json.loads(out)["disagreements"]
    assert (line["reason"], line["detail"]) == ("tokens", "output tokens: ledger 200, export 260")
    assert (line["export_input_tokens"], line["export_output_tokens"]) == ("1000", "260")


def test_reconcile_help_documents_the_export_layouts(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["reconcile", "--help"], env={**env, "COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "line_item_usage_type" in text and "lineItem/UnblendedCost" in text
    assert "input_tokens (or prompt_tokens)" in text and "cost_usd (or cost, amount_usd)" in text


def test_reconcile_refuses_an_unreadable_export(env: dict[str, str], tmp_path: Path) -> None:
    export = _export(tmp_path, ["2026-11-01,llama-4-scout,1"], "when,model,cost_usd")
    code, out = corral(env, "reconcile", "--provider", "groq", "--file", str(export))
    assert code == 2 and "no column named date or day or usage_date" in out


def test_prices_show_each_pool_price_with_its_basis(env: dict[str, str], tmp_path: Path) -> None:
    code, out = corral(env, "prices", "--at", "2026-11-01", "--format", "json")
    assert code == 0
    pool = {(p["provider"], p["model"]): p for p in json.loads(out)["prices"]}[("vllm", "llama-4-scout")]
    assert (pool["input"], pool["output"], pool["basis"]) == ("0.154321", "0.617284", "gpu_hours")
    assert pool["derived_from"] == {
        "gpus": 8,
        "gpu_hour_usd": "2.50",
        "input_tokens_per_s": "36000",
        "output_tokens_per_s": "9000",
        "source": "stated, unverified: docs/providers.md",
    }
    code, table = corral(env, "prices", "--at", "2026-11-01")
    assert "8 GPUs x 2.50 USD/GPU-hour / 36,000 input | 9,000 output tok/s" in " ".join(table.split())
    config = tmp_path / "corral.yaml"
    config.write_text(yaml.safe_dump({"providers": {"vllm": {"vllm": {"gpus": 16, "gpu_hour_usd": "2.50"}}}}))
    code, out = corral(env, "prices", "--at", "2026-11-01", "--format", "json", "--config", str(config))
    pool = {(p["provider"], p["model"]): p for p in json.loads(out)["prices"]}[("vllm", "llama-4-scout")]
    assert pool["output"] == "1.234568" and pool["derived_from"]["gpus"] == 16


def test_the_pool_is_not_counted_twice(env: dict[str, str], tmp_path: Path) -> None:
    """The pool's requests in the table are part of its fixed cost, not extra to it: the period's
    outlay is the table's total plus the fixed cost no request was charged for."""
    config = tmp_path / "corral.yaml"
    config.write_text(yaml.safe_dump({"providers": {"vllm": {"vllm": {"gpus": 8, "gpu_hour_usd": "2.50"}}}}))
    args = ["report", "spend", *SPAN, "--config", str(config)]
    code, out = corral(env, *args, "--format", "json")
    assert code == 0, out
    body = json.loads(out)
    pool = body["pool"]
    attributed, unattributed = Decimal(pool["attributed_cost_usd"]), Decimal(pool["unattributed_cost_usd"])
    assert attributed == Decimal(pool["served"]["cost_usd"]) > 0
    assert attributed + unattributed == Decimal(pool["fixed_cost_usd"]) == Decimal(960)
    outlay = Decimal(body["total_with_pool_fixed_cost_usd"])
    assert outlay == Decimal(body["total_cost_usd"]) + unattributed
    assert outlay == Decimal(body["total_cost_usd"]) - attributed + Decimal(pool["fixed_cost_usd"])
    code, table = corral(env, *args)
    flat = " ".join(table.split())
    assert "spend in the period = the table's total + the latter" in flat
    assert f"Spend in the period with the pool's fixed cost: {outlay.quantize(Decimal('0.01')):,} USD" in flat
