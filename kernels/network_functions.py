"""A network's own functions as the entry kernels see them: slots, signatures, calls by address.

The entry kernels (``entries.py``) are compiled once per machine and dtype and
shared by every network. What differs between networks, the activations, the
loss and the optimizer rule, they reach through six functions compiled for
that network (``fastbp.specialize``) and passed as an int64 array ``net`` of
their addresses, one per slot below. A kernel turns an address into a callable
with ``network_function(net[SLOT], SLOT, like)``; the call goes through the
pointer, with Numba's own calling convention (exceptions propagate).

Why addresses rather than linking the functions in: Numba copies every
function a kernel calls into that kernel's compiled module and optimises the
whole again, at every level of the call tree and in every ``prange`` body; a
network's epoch kernel then took 6-22 s to compile, and each new network paid
it again. Through a pointer, the entry kernels never see a network's code:
they compile once, and a new network compiles only its six small functions.
(A function passed as an ordinary argument cannot be cached; a function value
built from an integer can.)

The signatures are fixed per dtype: the functions are compiled for exactly
these, and Numba checks every call against them when it compiles the kernel
that makes it.

========================  =====================================================
slot                      function
========================  =====================================================
``HIDDEN_FORWARD``        ``(kind, product, b, gamma, z_out, a_out)``:
                          ``a_out = f(product + b)`` for the hidden activation
                          number ``kind`` (``z_out`` receives ``z`` when it
                          keeps it)
``HIDDEN_BACKWARD``       ``(kind, grad, a, z, gamma, gamma_grad)``: ``grad ⊙=
                          f'`` (and the gradient of a learnable γ)
``OUTPUT_FORWARD``        ``(product, b, gamma, z_out, a_out)``: the output
                          activation
``OUTPUT_DELTA``          ``(a, y, z, gamma, gamma_grad, scale, delta) -> loss``:
                          the output δ scaled by ``scale``, the summed loss
``OUTPUT_LOSS``           ``(a, y) -> loss``: the summed loss alone
``UPDATE``                ``(params, grads, state, hyper, step, n_decay, lo, hi,
                          l2)``: one optimizer step on ``params[lo:hi]`` (an
                          update rule of ``optimizers``)
========================  =====================================================
"""
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

HIDDEN_FORWARD = 0
HIDDEN_BACKWARD = 1
OUTPUT_FORWARD = 2
OUTPUT_DELTA = 3
OUTPUT_LOSS = 4
UPDATE = 5
N_SLOTS = 6

# the slots each kind of entry kernel calls
PREDICT = (HIDDEN_FORWARD, OUTPUT_FORWARD)
EVALUATE = PREDICT + (OUTPUT_LOSS,)
GRADIENT = PREDICT + (HIDDEN_BACKWARD, OUTPUT_DELTA)
TRAIN = GRADIENT + (UPDATE,)


def signature(slot, dtype):
    """The Numba signature of ``slot`` for arrays of the Numba float type ``dtype``."""
    v, m = types.Array(dtype, 1, "C"), types.Array(dtype, 2, "C")
    i, f = types.int64, types.float64
    return {
        HIDDEN_FORWARD: types.none(i, m, v, v, m, m),
        HIDDEN_BACKWARD: types.none(i, m, m, m, v, v),
        OUTPUT_FORWARD: types.none(m, v, v, m, m),
        OUTPUT_DELTA: f(m, m, m, v, v, f, m),
        OUTPUT_LOSS: f(m, m),
        UPDATE: types.none(v, v, m, types.Array(f, 1, "C"), i, i, i, i, f),
    }[slot]


@intrinsic
def network_function(typingctx, address, slot, like):
    """The function at ``address`` (an int64), callable with ``slot``'s signature.

    ``slot`` must be one of the constants above; the dtype of the array
    ``like`` chooses the float32 or float64 signature.
    """
    if (not isinstance(slot, types.IntegerLiteral) or not isinstance(address, types.Integer)
            or not isinstance(like, types.Array)):
        return None
    fnty = types.FunctionType(signature(slot.literal_value, like.dtype))

    def codegen(context, builder, sig, args):
        value = cgutils.create_struct_proxy(fnty)(context, builder)
        value.jit_addr = builder.inttoptr(args[0], cgutils.voidptr_t)
        value.c_addr = cgutils.voidptr_t(None)
        value.py_addr = cgutils.voidptr_t(None)
        return value._getvalue()
    return fnty(address, slot, like), codegen
