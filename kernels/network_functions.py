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

The parallel entry kernels call the bodies of their ``prange`` loops the same
way (the slots from ``SHARD`` on): these are shared by every network, compiled
once per machine and dtype like the entries (``BODIES`` names them in
``entries``), but called through a pointer for the same reason. Linked in, each
``prange`` body's compiled module held a copy of the body's whole call tree,
optimised again, and the entry one more: the sharded epoch compiled in
4.8-5.9 s linked and 3.1-3.7 s by address, its body included (from an
empty cache, per dtype).

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
``SHARD`` ...             the ``prange`` bodies of the sharded epoch, the
                          parallel prediction and the column-split epoch
                          (``entries.shard``, ``predict_worker``, ``gather_part``,
                          ``hidden_forward_part``, ``output_backward_part``,
                          ``update_part``, ``hidden_backward_part``)
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
# the parallel entries' prange bodies, shared by every network
SHARD = 6
PREDICT_WORKER = 7
GATHER_PART = 8
HIDDEN_FORWARD_PART = 9
OUTPUT_BACKWARD_PART = 10
UPDATE_PART = 11
HIDDEN_BACKWARD_PART = 12
N_SLOTS = 13

# the function of ``entries`` in each body slot
BODIES = {SHARD: "shard", PREDICT_WORKER: "predict_worker", GATHER_PART: "gather_part",
          HIDDEN_FORWARD_PART: "hidden_forward_part",
          OUTPUT_BACKWARD_PART: "output_backward_part", UPDATE_PART: "update_part",
          HIDDEN_BACKWARD_PART: "hidden_backward_part"}

# the slots each kind of entry kernel calls
PREDICT = (HIDDEN_FORWARD, OUTPUT_FORWARD)
PREDICT_PARALLEL = PREDICT + (PREDICT_WORKER,)
EVALUATE = PREDICT + (OUTPUT_LOSS,)
GRADIENT = PREDICT + (HIDDEN_BACKWARD, OUTPUT_DELTA)
TRAIN = GRADIENT + (UPDATE,)
TRAIN_SHARDED = TRAIN + (SHARD,)
TRAIN_COLUMNS = TRAIN + (GATHER_PART, HIDDEN_FORWARD_PART, OUTPUT_BACKWARD_PART, UPDATE_PART,
                         HIDDEN_BACKWARD_PART)
ENTRY_SLOTS = {"train_epoch": TRAIN, "train_epoch_sharded": TRAIN_SHARDED,
               "train_epoch_columns": TRAIN_COLUMNS, "predict_rows": PREDICT,
               "predict_rows_parallel": PREDICT_PARALLEL, "evaluate_rows": EVALUATE,
               "forward_backward": GRADIENT}


def signature(slot, dtype):
    """The Numba signature of ``slot`` for arrays of the Numba float type ``dtype``."""
    v, m = types.Array(dtype, 1, "C"), types.Array(dtype, 2, "C")
    i, f = types.int64, types.float64
    iv, im, fv = types.Array(i, 1, "C"), types.Array(i, 2, "C"), types.Array(f, 1, "C")
    none = types.none
    return {
        HIDDEN_FORWARD: none(i, m, v, v, m, m),
        HIDDEN_BACKWARD: none(i, m, m, m, v, v),
        OUTPUT_FORWARD: none(m, v, v, m, m),
        OUTPUT_DELTA: f(m, m, m, v, v, f, m),
        OUTPUT_LOSS: f(m, m),
        UPDATE: none(v, v, m, fv, i, i, i, i, f),
        # the bodies' arguments are those of their definitions in ``entries``
        SHARD: f(iv, i, i, m, m, iv, i, i, v, v, im, v, f, f, f, v, v, v, v, v),
        PREDICT_WORKER: none(iv, i, i, m, v, im, v, v, v, m),
        GATHER_PART: none(i, i, m, m, iv, i, i, v, v),
        HIDDEN_FORWARD_PART: f(iv, i, i, i, v, v, im, im, v, v, m, m, f, v),
        OUTPUT_BACKWARD_PART: none(iv, i, i, v, v, v, im, im, v, v, m, m, m, f, v),
        UPDATE_PART: none(iv, i, i, v, v, m, im, im, fv, i, i),
        HIDDEN_BACKWARD_PART: none(iv, i, i, i, v, v, v, im, im, v, v, v, m, m, m, f, v),
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
