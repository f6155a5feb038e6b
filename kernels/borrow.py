"""Arrays borrowed for the length of a kernel call, without reference counting.

Every view a kernel takes (a layer's block of the workspace, its weights in
the flat buffer) increments and later decrements its parent's reference count
with an atomic instruction. On small networks those pairs took 19% of a
training epoch (network T, 64-32-10, measured with ``perf``). A kernel's
buffers are owned by its Python caller and outlive the call, so the kernel can
read them through arrays with no owner record (Numba's ``carray`` over the same
memory): their views then carry no count to update.

The entry kernels borrow their records first thing (``network``, ``settings``,
``data``, ``work``, ``columns``: the records of ``records``); nothing borrowed may
be returned to Python or kept beyond the call.
"""
import numba
from numba import types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

from ._config import kernel


@intrinsic
def _address(typingctx, addr):
    """The integer ``addr`` as a ``void*``."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))
    return types.voidptr(addr), codegen


def borrow(a):
    """``a``'s memory as an array of its shape and dtype with no owner record (in a kernel).

    Only for C-contiguous arrays (refused when the kernel compiles otherwise),
    and only while ``a`` is alive. Outside compiled code it returns ``a``.
    """
    return a


@overload(borrow, inline="always")
def _borrow(a):
    if not isinstance(a, types.Array) or a.layout != "C":
        raise TypingError(f"borrow takes a C-contiguous array, not {a}")
    return lambda a: numba.carray(_address(a.ctypes.data), a.shape, a.dtype)


@kernel
def borrow_network(network):
    net, params, layers, gammas = network
    return borrow(net), borrow(params), borrow(layers), borrow(gammas)


@kernel
def borrow_settings(settings):
    state, hyper, step, n_decay, l2, l2_per_weight = settings
    return borrow(state), borrow(hyper), step, n_decay, l2, l2_per_weight


@kernel
def borrow_data(data):
    X, Y, perm, batch_size = data
    return borrow(X), borrow(Y), borrow(perm), batch_size


@kernel
def borrow_work(work):
    acts, zs, deltas, grads, x_batch, y_batch, sums = work
    return (borrow(acts), borrow(zs), borrow(deltas), borrow(grads), borrow(x_batch),
            borrow(y_batch), borrow(sums))


@kernel
def borrow_columns(columns):
    bounds, priv_acts, priv_zs, priv_deltas, alpha_beta, packed_params, packed_state = columns
    return (borrow(bounds), borrow(priv_acts), borrow(priv_zs), borrow(priv_deltas),
            borrow(alpha_beta), borrow(packed_params), borrow(packed_state))
