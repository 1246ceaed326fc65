"""Einsum with one data operand and at most one constant: a fixed linear map (`ir.Einsum`).

The equation gets one more letter, for the probe axis, on the data operand and the output; an
implicit output (no '->') is made explicit first, as ONNX defines it (letters used once, sorted).
"""

from regionaudit import ir
from regionaudit.importer.registry import PRODUCT, Data, Unsupported, attr, converter


def explicit(equation: str) -> tuple[list[str], str]:
    eq = equation.replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if "->" not in eq:
        letters = [c for c in lhs if c.isalpha()]
        rhs = ("..." if "..." in lhs else "") + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return terms, rhs


@converter("Einsum")
def einsum(node, ctx):
    values = [ctx.input(i) for i in range(len(node.input))]
    data = [i for i, v in enumerate(values) if isinstance(v, Data)]
    if len(data) > 1:
        raise Unsupported("product of two data tensors is not piecewise linear", kind=PRODUCT)
    if len(values) > 2:
        raise Unsupported("more than one constant operand is not supported")
    terms, rhs = explicit(attr(node, "equation", ""))
    if len(terms) != len(values):
        raise Unsupported(f"equation has {len(terms)} operands for {len(values)} inputs")
    probe = next((c for c in "pqrstuvwxyzabcdefghijklmno" if c not in "".join(terms) + rhs), None)
    if probe is None:
        raise Unsupported("the equation uses every lower-case letter")
    d = data[0]
    terms[d] = probe + terms[d]
    equation = ",".join(terms) + "->" + probe + rhs
    weight = None if len(values) == 1 else ctx.const(1 - d, "operand")
    return ctx.add(ir.Einsum, [values[d]], equation=equation, weight=weight, data_first=d == 0)
