"""The calculator tool: arithmetic on numbers only, parsed with ``ast`` (never ``eval``).

Allowed: numbers, ``+ - * / // % **``, unary minus, parentheses, and ``sqrt``/``abs``/``round``/``min``/
``max``. Anything else (names, attributes, calls to other functions, huge powers) raises
:class:`CalculatorError`, which the agent's tool layer reports as a failed tool call — the signal AIR
turns into a negative intermediate reward.
"""
from __future__ import annotations

import ast
import math
import operator
from typing import Callable, Union

Number = Union[int, float]

_BINARY: dict[type, Callable[[Number, Number], Number]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Number], Number]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCTIONS: dict[str, Callable[..., Number]] = {"sqrt": math.sqrt, "abs": abs, "round": round, "min": min,
                                                "max": max}
MAX_EXPONENT = 64
MAX_LENGTH = 200


class CalculatorError(ValueError):
    """The expression is not plain arithmetic, or it cannot be computed."""


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression; ``x`` and ``^`` are read as ``*`` and ``**``."""
    if not isinstance(expression, str) or not expression.strip():
        raise CalculatorError("empty expression")
    if len(expression) > MAX_LENGTH:
        raise CalculatorError(f"expression longer than {MAX_LENGTH} characters")
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/").replace(",", "")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from exc
    try:
        return _eval(tree.body)
    except ZeroDivisionError as exc:
        raise CalculatorError("division by zero") from exc
    except (OverflowError, ValueError, TypeError) as exc:
        raise CalculatorError(str(exc) or type(exc).__name__) from exc


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculatorError(f"exponent above {MAX_EXPONENT}")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS \
            and not node.keywords:
        return _FUNCTIONS[node.func.id](*(_eval(a) for a in node.args))
    raise CalculatorError(f"unsupported: {ast.dump(node)[:60]}" if not isinstance(node, ast.Name)
                          else f"unknown name {node.id!r}")


def format_number(value: Number) -> str:
    """Integers without a decimal point; other floats rounded to 6 significant decimals."""
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as "12 + 7" or "(3 * 4) / 2" and return the result."""
    return format_number(evaluate(expression))
