"""``unliteral(value)``: a constant argument typed as its plain type, so the callee compiles once.

A kernel called with a constant (``gemm(NO_TRANS, TRANS, ...)``, a flag ``True``)
is typed first with the constant's *literal* type, and Numba keeps that
signature: each distinct constant compiled the callee again, with everything
it calls. In the column-split epoch that was the packing of its panels twice
(``reorder(..., True)`` and ``(..., False)``: 1.06 s and 0.50 s) and GEMM three
times. Wrapped in ``unliteral``, the constant is an ordinary ``int`` or
``bool`` and every call site shares one compiled callee.
"""
from numba import types
from numba.extending import intrinsic


@intrinsic
def unliteral(typingctx, value):
    """``value`` typed as its non-literal type (same value, no code)."""
    plain = types.unliteral(value)

    def codegen(context, builder, signature, args):
        return context.cast(builder, args[0], signature.args[0], plain)
    return plain(value), codegen
