"""Arrays borrowed for the length of a kernel call, without reference counting.

Every view a kernel takes (a layer's block of the workspace, its weights in
the flat buffer) increments and later decrements its parent's reference count
with an atomic instruction. On small networks those pairs took 19% of a
training epoch (network T, 64-32-10, measured with ``perf``). A kernel's
buffers are owned by its Python caller and outlive the call, so the kernel can
read them through copies of their descriptors with the owner record set to
null: their views then carry no count to update.

The entry kernels borrow their records first thing (``net, params, layers,
gammas = borrow(network)``); nothing borrowed may be returned to Python or
kept beyond the call.

A borrowed array is typed writable whatever its flag: the Python layer hands
the kernels their inputs read-only (``records.read_only``), so that a caller's
array and a read-only memory map are one type and an entry kernel compiles
once, not once for each (about 5 s per entry and dtype), while the code below
the entries, written for writable blocks, compiles unchanged. Kernels never
write an input.
"""
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic


def _null_owner(context, builder, array_type, value):
    array = cgutils.create_struct_proxy(array_type)(context, builder, value=value)
    array.meminfo = cgutils.get_null_value(array.meminfo.type)
    array.parent = cgutils.get_null_value(array.parent.type)
    return array._getvalue()


def _borrowable(t):
    return not isinstance(t, types.Array) or t.layout == "C"


def _writable(t):
    return t.copy(readonly=False) if isinstance(t, types.Array) and not t.mutable else t


@intrinsic
def borrow(typingctx, value):
    """``value`` with no owner record, in a kernel: an array, or a record (a tuple) whose
    arrays all lose theirs (its other fields pass through).

    The same data, shape and strides, with the ``meminfo`` and Python parent
    null: views of it update no reference count. Only for C-contiguous
    arrays (refused when the kernel compiles otherwise), and only while the
    arrays are alive. One intrinsic, not a compiled helper per record nor
    Numba's ``carray``: those added 1.8 s to a cold start (the default
    estimator on digits, 7.3 → 9.1 s). Read-only arrays come back typed
    writable (the data model is the same; see the module's docstring).
    """
    fields = list(value) if isinstance(value, types.BaseTuple) else [value]
    if not all(_borrowable(t) for t in fields):
        raise TypingError(f"borrow takes C-contiguous arrays, not {value}")

    if isinstance(value, types.BaseTuple):
        result = types.BaseTuple.from_types([_writable(t) for t in value])
    else:
        result = _writable(value)

    def codegen(context, builder, signature, args):
        if not isinstance(value, types.BaseTuple):
            return _null_owner(context, builder, value, args[0])
        fields = [builder.extract_value(args[0], k) for k in range(len(value))]
        fields = [_null_owner(context, builder, t, f) if isinstance(t, types.Array) else f
                  for t, f in zip(value, fields)]
        # built anew: writable fields may turn a heterogeneous tuple into a uniform one
        return context.make_tuple(builder, result, fields)
    return result(value), codegen
