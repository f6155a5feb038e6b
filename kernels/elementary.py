"""exp, expm1 and tanh in arithmetic the compiler can vectorise, float32 and float64.

The C library's ``exp`` and ``tanh`` are opaque calls that keep a loop scalar
(measured here: about 3 and 9 ns per element); these use only multiply-adds, a
floor, an integer shift and a bit cast, so the loops that call them vectorise.

``x = k·ln2 + r`` with ``|r| ≤ ln2/2``; ``e^r − 1`` is its Taylor polynomial
of degree 14 (truncation error below half a float64 ulp; float32 pays a few
extra multiply-adds for one polynomial, written out without a loop) and
``2^k`` is built from exponent bits in two halves, so overflow to inf and
underflow to 0 happen in the final products, as in ``np.exp``.
"""
import numpy as np
from numba import types
from numba.extending import intrinsic, overload

from ._config import ERROR_MODEL, FASTMATH, inline

LOG2E = 1.4426950408889634
# ln 2 split so that k·LN2_HI is exact for the k that occur (Cody and Waite)
LN2_HI32, LN2_LO32 = 0.693145751953125, 1.4286068203094173e-06
LN2_HI64, LN2_LO64 = 0.6931471803691238, 1.9082149292705877e-10
# clamps that keep both halves of 2^k normal; beyond them the result is 0 or inf already
CLAMP32, CLAMP64 = (-104.0, 89.0), (-746.0, 710.0)
# 1/k! for k = 2..14
C2, C3, C4, C5, C6, C7, C8 = (1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040, 1 / 40320)
C9, C10, C11, C12, C13, C14 = (1 / 362880, 1 / 3628800, 1 / 39916800, 1 / 479001600,
                               1 / 6227020800, 1 / 87178291200)


@intrinsic
def _pow2(typingctx, k, like):
    """``2.0**k`` as a float of ``like``'s type, from exponent bits (``k`` in range)."""
    if like == types.float32:
        int_type, bias, shift = types.int32, 127, 23
    elif like == types.float64:
        int_type, bias, shift = types.int64, 1023, 52
    else:
        return None

    def codegen(context, builder, signature, args):
        ir_int = context.get_value_type(int_type)
        bits = builder.add(builder.trunc(args[0], ir_int) if int_type == types.int32
                           else args[0], ir_int(bias))
        bits = builder.shl(bits, ir_int(shift))
        return builder.bitcast(bits, context.get_value_type(like))
    return like(types.int64, like), codegen


@inline
def _expm1_taylor(r):
    """``e^r − 1`` for ``|r| ≤ ln2/2``, Horner form."""
    t = type(r)
    p = t(C13) + r * t(C14)
    p = t(C12) + r * p
    p = t(C11) + r * p
    p = t(C10) + r * p
    p = t(C9) + r * p
    p = t(C8) + r * p
    p = t(C7) + r * p
    p = t(C6) + r * p
    p = t(C5) + r * p
    p = t(C4) + r * p
    p = t(C3) + r * p
    p = t(C2) + r * p
    return r + r * (r * p)


@inline
def _exp_parts(x, lo, hi, ln2_hi, ln2_lo):
    """``(k, e^r − 1, 2^(k//2), 2^(k − k//2))`` for ``x`` clamped to ``[lo, hi]``."""
    t = type(x)
    xc = min(max(x, t(lo)), t(hi))
    k = np.floor(xc * t(LOG2E) + t(0.5))
    r = (xc - k * t(ln2_hi)) - k * t(ln2_lo)
    k_int = np.int64(k)
    half = k_int >> 1
    return k_int, _expm1_taylor(r), _pow2(half, x), _pow2(k_int - half, x)


@inline
def _exp(x, lo, hi, ln2_hi, ln2_lo):
    _, q, s1, s2 = _exp_parts(x, lo, hi, ln2_hi, ln2_lo)
    return x if x != x else (q * s1 + s1) * s2


@inline
def _expm1(x, lo, hi, ln2_hi, ln2_lo):
    k, q, s1, s2 = _exp_parts(x, lo, hi, ln2_hi, ln2_lo)
    # k = 0 keeps the polynomial's full relative precision near 0
    return x if x != x else (q if k == 0 else (q * s1 + s1) * s2 - type(x)(1.0))


@inline
def _tanh(x, lo, hi, ln2_hi, ln2_lo):
    u = _expm1(-2 * abs(x), lo, hi, ln2_hi, ln2_lo)  # in (-1, 0]: no cancellation
    v = -u / (u + type(x)(2.0))
    return -v if x < 0 else v


def fast_exp(x):
    """e^x; called from a kernel, the overload below compiles in."""
    return np.exp(x)


def fast_expm1(x):
    """e^x − 1, with full relative precision near 0."""
    return np.expm1(x)


def fast_tanh(x):
    """tanh(x), with full relative precision near 0."""
    return np.tanh(x)


def _register(function, generic):
    @overload(function, jit_options={"fastmath": set(FASTMATH), "error_model": ERROR_MODEL})
    def _typed(x):
        if x == types.float32:
            return lambda x: generic(x, CLAMP32[0], CLAMP32[1], LN2_HI32, LN2_LO32)
        if x == types.float64:
            return lambda x: generic(x, CLAMP64[0], CLAMP64[1], LN2_HI64, LN2_LO64)
    return _typed


_register(fast_exp, _exp)
_register(fast_expm1, _expm1)
_register(fast_tanh, _tanh)
