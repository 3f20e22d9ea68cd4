"""The agent's tools: safe arithmetic, the clock, and the caller's own sessions (identity from the run)."""

import json
import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.agent.tools.calculator import CalculationError, evaluate
from app.agent.tools.calculator import calculator as calculator_tool
from app.agent.tools.clock import current_datetime
from tests.conftest import auth, new_session, register

PROJECT_ROOT = Path(__file__).resolve().parents[2]


async def calculate(expression: str) -> str:
    result = await calculator_tool.ainvoke({"expression": expression})
    assert isinstance(result, str)
    return result


# --- calculator: results


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2+3", "5"),
        ("2 - 5", "-3"),
        ("2*3", "6"),
        ("7/2", "3.5"),
        ("8/2", "4"),
        ("7//2", "3"),
        ("-7//2", "-4"),
        ("7 % 3", "1"),
        ("2^10", "1024"),
        ("2**10", "1024"),
        ("2**-1", "0.5"),
        ("(1+2)*3", "9"),
        ("1+2*3", "7"),
        ("((2+3)*(4-1))/5", "3"),
        ("-5+2", "-3"),
        ("-(2+3)", "-5"),
        ("--3", "3"),
        ("+4", "4"),
        ("sqrt(16)", "4"),
        ("sqrt(2)^2", "2.0000000000000004"),
        ("abs(-3)", "3"),
        ("abs(-2.5)", "2.5"),
        ("round(2.567, 2)", "2.57"),
        ("round(2.4)", "2"),
        ("log(e)", "1"),
        ("sin(0)", "0"),
        ("cos(0)", "1"),
        ("tan(0)", "0"),
        ("cos(pi)", "-1"),
        ("(17.5 * 3) / 4", "13.125"),
        ("0.1+0.2", "0.30000000000000004"),
    ],
)
async def test_calculator_computes(expression, expected):
    assert await calculate(expression) == expected


async def test_calculator_constants():
    assert float(await calculate("pi")) == pytest.approx(math.pi)
    assert float(await calculate("e")) == pytest.approx(math.e)
    assert float(await calculate("2*pi")) == pytest.approx(2 * math.pi)
    assert float(await calculate("log(100)/log(10)")) == pytest.approx(2)
    assert float(await calculate("sin(pi/2)")) == pytest.approx(1)


def test_evaluate_returns_numbers():
    assert evaluate("2*3") == 6
    assert evaluate("7/2") == 3.5
    assert evaluate("2^3") == 8  # ^ means power, not xor
    assert evaluate("sqrt(9) + abs(-1)") == 4
    assert evaluate("pi") == math.pi


def test_integer_results_print_without_decimal_point():
    # The model reads "6", not "6.0"; a non-integer float keeps its fraction.
    assert calculator_tool.invoke({"expression": "2*3"}) == "6"
    assert calculator_tool.invoke({"expression": "6/3"}) == "2"
    assert calculator_tool.invoke({"expression": "7/2"}) == "3.5"


# --- calculator: errors come back as text, never as exceptions

ERRORS = {
    "division by zero": "1/0",
    "floor division by zero": "1//0",
    "modulo by zero": "5 % 0",
    "zero to a negative power": "0**-1",
    "huge exponent": "2**100000",
    "huge exponent via caret": "2^100000",
    "huge negative exponent": "2**-100000",
    "result too large": "9**999",
    "float overflow": "1e308*10",
    "complex result": "(-1)**0.5",
    "dunder import": "__import__('os')",
    "import via name": "os",
    "unknown function": "eval('1+1')",
    "attribute access": "(1).__class__",
    "attribute on constant": "pi.real",
    "lambda": "(lambda: 1)()",
    "list comprehension": "[x for x in (1, 2)]",
    "generator expression": "sum(x for x in (1, 2))",
    "string": "'a' * 3",
    "bytes": "b'abc'",
    "boolean": "True + 1",
    "keyword argument": "round(2.567, ndigits=2)",
    "subscript": "(1, 2)[0]",
    "comparison": "1 < 2",
    "walrus": "(x := 2)",
    "too long": "1+" * 100 + "1",
    "syntax error": "2 +* 3",
    "unbalanced parentheses": "(1 + 2",
    "empty": "",
    "statement": "import os",
    "sqrt domain": "sqrt(-1)",
    "log of zero": "log(0)",
    "log of negative": "log(-1)",
    "wrong arity": "abs(1, 2)",
}


@pytest.mark.parametrize("expression", list(ERRORS.values()), ids=list(ERRORS))
async def test_calculator_reports_errors_as_text(expression):
    result = await calculate(expression)
    assert result.startswith("Error: "), result
    assert len(result) < 200  # a short message for the model, not a traceback


@pytest.mark.parametrize("expression", list(ERRORS.values()), ids=list(ERRORS))
def test_evaluate_raises_calculation_error(expression):
    with pytest.raises(CalculationError):
        evaluate(expression)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1/0", "division by zero"),
        ("2**100000", "exponent too large"),
        ("9**999", "out of range"),
        ("__import__('os')", "unsupported"),
        ("1+" * 100 + "1", "too long"),
        ("2 +* 3", "not a valid expression"),
        ("sqrt(-1)", "math domain error"),
        ("log(0)", "math domain error"),
    ],
)
async def test_calculator_error_messages_say_what_went_wrong(expression, message):
    assert message in await calculate(expression)


async def test_expression_at_the_length_limit_is_accepted():
    expression = "1+" * 99 + "1"  # 199 characters
    assert len(expression) <= 200
    assert await calculate(expression) == "100"


def test_no_side_effects_from_hostile_input(tmp_path):
    marker = tmp_path / "pwned"
    attempt = f"__import__('os').system('touch {marker}')"
    assert calculator_tool.invoke({"expression": attempt}).startswith("Error: ")
    assert not marker.exists()


@pytest.mark.parametrize("expression", ["1e309", "1e309-1e309", "round(1e300)"])
async def test_non_finite_or_huge_results_are_errors(expression):
    assert (await calculate(expression)).startswith("Error: ")


def test_round_with_huge_ndigits_does_not_hang():
    # In a subprocess so that a hang can be killed rather than stalling the suite.
    code = (
        "from app.agent.tools.calculator import calculator; "
        "print(calculator.invoke({'expression': 'round(1, -10**99)'}))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5
        )
    except subprocess.TimeoutExpired:
        pytest.fail("round(1, -10**99) did not finish within 5 s")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in {"0", "0.0"} or done.stdout.startswith("Error: ")


# --- current_datetime


async def test_current_datetime_defaults_to_utc_today():
    before = datetime.now(UTC).date().isoformat()
    result = await current_datetime.ainvoke({})
    after = datetime.now(UTC).date().isoformat()
    assert not result.startswith("Error")
    assert before in result or after in result
    assert "UTC+0000" in result


async def test_current_datetime_in_paris():
    zone = ZoneInfo("Europe/Paris")
    before = datetime.now(zone).date().isoformat()
    result = await current_datetime.ainvoke({"timezone": "Europe/Paris"})
    after = datetime.now(zone).date().isoformat()
    assert not result.startswith("Error")
    assert "Europe/Paris" in result
    assert before in result or after in result
    assert "UTC+0100" in result or "UTC+0200" in result


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus_Mons", "Not A Zone", "", "Europe", "../../etc/passwd", "/etc/passwd", "UTC\x00"]
)
async def test_current_datetime_rejects_unknown_zones_with_a_message(zone):
    result = await current_datetime.ainvoke({"timezone": zone})
    assert result.startswith("Error: unknown time zone"), result
    assert "root:" not in result


# --- list_my_sessions, through the API: identity comes from the run context


async def chat(client: httpx.AsyncClient, user: dict[str, str], sid: str, message: str) -> dict:
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
    assert r.status_code == 200, r.text
    return r.json()


def only_call(body: dict, name: str) -> dict:
    calls = body["tool_calls"]
    assert [c["name"] for c in calls] == [name], calls
    return calls[0]


def listed_lines(result: str) -> list[str]:
    return [line for line in result.splitlines() if line.startswith("- ")]


async def test_list_my_sessions_sees_only_the_callers_sessions(client):
    alice, bob = await register(client), await register(client)
    alpha = await new_session(client, alice, "alpha")
    await new_session(client, alice, "beta")
    gamma = await new_session(client, bob, "gamma")

    call = only_call(await chat(client, alice, alpha, "what have I got? [sessions]"), "list_my_sessions")
    assert call["is_error"] is False
    result = call["result"]
    assert result.startswith("2 session(s):"), result
    lines = listed_lines(result)
    assert len(lines) == 2
    assert any(line.startswith("- alpha ") and line.endswith("[this session]") for line in lines), lines
    assert any(line.startswith("- beta ") and "[this session]" not in line for line in lines), lines
    assert "gamma" not in result

    call = only_call(await chat(client, bob, gamma, "[sessions]"), "list_my_sessions")
    result = call["result"]
    assert result.startswith("1 session(s):"), result
    [line] = listed_lines(result)
    assert line.startswith("- gamma ") and line.endswith("[this session]"), line
    assert "alpha" not in result
    assert "beta" not in result


async def test_list_my_sessions_ignores_a_model_supplied_user_id(client):
    alice, bob = await register(client), await register(client)
    alpha = await new_session(client, alice, "alpha")
    await new_session(client, alice, "beta")
    await new_session(client, bob, "gamma")
    await new_session(client, bob, "delta")
    r = await client.get("/api/v1/auth/me", headers=auth(bob))
    assert r.status_code == 200, r.text
    bob_id = r.json()["id"]

    message = f"[tool:list_my_sessions:{json.dumps({'user_id': bob_id})}]"
    body = await chat(client, alice, alpha, message)
    call = only_call(body, "list_my_sessions")
    assert call["args"] == {"user_id": bob_id}  # the model did ask for Bob's sessions
    result = call["result"]
    for name in ("gamma", "delta"):
        assert name not in result
        assert name not in body["reply"]
    if call["is_error"]:
        return  # rejecting the forged argument is acceptable; leaking is not
    assert result.startswith("2 session(s):"), result
    assert "alpha" in result
    assert "beta" in result


def test_tool_errors_hide_internals_but_explain_bad_arguments():
    from langgraph.prebuilt.tool_node import ToolInvocationError

    from app.agent.tools import tool_error_message

    internal = tool_error_message(RuntimeError("SELECT password FROM secrets WHERE 1=1"))
    assert internal.startswith("Error: ") and "SELECT" not in internal
    bad_args = tool_error_message(
        ToolInvocationError("calculator", ValueError("expression: field required"), {})
    )
    assert "invalid arguments" in bad_args


async def test_bad_tool_arguments_reach_the_model_as_an_error(client, user):
    sid = await new_session(client, user)
    r = await client.post(
        f"/api/v1/sessions/{sid}/chat", json={"message": '[tool:calculator:{"wrong": 1}]'}, headers=auth(user)
    )
    assert r.status_code == 200, r.text
    call = r.json()["tool_calls"][0]
    assert call["is_error"] is True
    assert "invalid arguments" in call["result"]
