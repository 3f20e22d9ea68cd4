"""Tool: safe arithmetic over an expression tree (no eval)."""

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from langchain_core.tools import tool

MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e100

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class CalculationError(ValueError):
    pass


def _round(value: float, ndigits: int = 0) -> float:
    # round(1, -10**99) would compute 10**(10**99) and never return.
    if not isinstance(ndigits, int) or abs(ndigits) > 100:
        raise CalculationError("round() digits must be a whole number between -100 and 100")
    return round(value, ndigits)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": _round,
    "log": math.log,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}


def _eval(node: ast.AST) -> float | int:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        value: float | int = node.value  # type: ignore[assignment]
        return value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))  # type: ignore[no-any-return]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculationError("exponent too large")
        result = _BINARY[type(node.op)](left, right)
        if isinstance(result, complex) or abs(result) > MAX_MAGNITUDE:
            raise CalculationError("result out of range")
        return result  # type: ignore[no-any-return]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return _FUNCTIONS[node.func.id](*(_eval(a) for a in node.args))  # type: ignore[no-any-return]
    raise CalculationError("unsupported expression")


def evaluate(expression: str) -> float | int:
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculationError("expression too long")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise CalculationError("not a valid expression") from exc
    try:
        result = _eval(tree)
    except (ZeroDivisionError, OverflowError, TypeError) as exc:
        raise CalculationError(str(exc) or type(exc).__name__) from exc
    except ValueError as exc:  # math domain errors
        raise CalculationError(str(exc)) from exc
    if not math.isfinite(result) or abs(result) > MAX_MAGNITUDE:
        raise CalculationError("result out of range")
    return result


@tool
def calculator(expression: str) -> str:
    """Evaluate the arithmetic expression the user asked about, written out in full. Supports
    + - * / // % ^, parentheses, sqrt, abs, round, log, sin, cos, tan, pi and e."""
    try:
        result = evaluate(expression)
    except CalculationError as exc:
        return f"Error: {exc}"
    if isinstance(result, float) and result.is_integer() and abs(result) < 1e15:
        result = int(result)
    return str(result)
