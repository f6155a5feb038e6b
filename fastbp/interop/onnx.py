"""Write a ``fastbp.MLP`` as an ONNX graph (``MLP.to_onnx``).

Imported only by ``MLP.to_onnx``, so onnx stays optional. Each layer is one
``Gemm`` (``X·W + b``; ONNX's row-major ``B`` is fastbp's ``(fan_in, fan_out)``
as it is) followed by its activation, in the form its registry entry gives
(``fastbp.kernels.activations``): one ONNX operator of the same function, or a
small composition of elementwise operators where ONNX Runtime's CPU kernel
exists for float32 only (``Elu``, ``Softplus``, ``HardSigmoid``) or takes its
parameter as a float32 attribute (``LeakyRelu``).

Outputs: ``output``, the output activations (``predict_proba`` of a
classifier, ``predict`` of a regressor as ``(n_samples, n_outputs)``), and for
classifiers ``label``, what ``predict`` returns (int64).
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..kernels.activations import ACTIVATIONS
from ..kernels.losses import LOSSES

__all__ = ["OPSET", "build", "write"]

OPSET = 17  # run by every ONNX Runtime since 1.13


class _Graph:
    """Nodes and constants, named in order of creation."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.nodes, self.initializers = [], []
        self._count = 0

    def name(self, stem):
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem, value, dtype=None):
        name = self.name(stem)
        array = np.asarray(value, dtype=dtype or self.dtype)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type, inputs, stem=None, output=None, **attrs):
        out = output or self.name(stem or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.name(op_type),
                                           **attrs))
        return out


def _activation(g, name, z, gamma, slopes, output):
    """Append the nodes of one activation applied to tensor ``z``; return the result's name.

    The registry entry (``fastbp.kernels.activations``) gives one ONNX operator
    of the same function, or a function that appends a composition.
    """
    form = ACTIVATIONS[name].onnx
    if isinstance(form, str):
        return g.op(form, [z], output=output)
    return form(g, z, gamma, slopes, output)


def build(model):
    """The ``onnx.ModelProto`` of ``model`` (checked by ``onnx.checker``)."""
    from .. import __version__
    elem = TensorProto.FLOAT if model.dtype == np.float32 else TensorProto.DOUBLE
    g = _Graph(model.dtype)
    x = "X"
    n_layers = len(model.coefs_)
    for l, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        z = g.op("Gemm", [x, g.const(f"W{l}", W), g.const(f"b{l}", b)], stem=f"z{l}")
        last = l == n_layers - 1
        x = _activation(g, model.network.layout.activations[l], z, model.network.layout.gamma_per_layer[l],
                        model.slopes_.get(l), "output" if last else None)
    n_samples, n_out = "n_samples", model.layer_sizes[-1]
    outputs = [helper.make_tensor_value_info("output", elem, [n_samples, n_out])]
    targets = LOSSES[model.loss].targets  # what predict returns, as MLP.predict
    if targets == "labels":
        g.op("ArgMax", ["output"], output="label", axis=1, keepdims=0)
        outputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, [n_samples]))
    elif targets == "unit":
        above = g.op("Greater", ["output", g.const("threshold", 0.5)])
        label = g.op("Cast", [above], output="label" if n_out > 1 else None,
                     to=TensorProto.INT64)
        label_shape = [n_samples, n_out]
        if n_out == 1:  # predict returns (n_samples,) for one output
            g.op("Squeeze", [label, g.const("axis", [1], np.int64)], output="label")
            label_shape = [n_samples]
        outputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, label_shape))
    graph = helper.make_graph(
        g.nodes, "fastbp_mlp",
        [helper.make_tensor_value_info("X", elem, [n_samples, model.layer_sizes[0]])],
        outputs, g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="fastbp", producer_version=__version__,
                              doc_string=f"{model.network.layout.describe()}, loss={model.loss}")
    proto.ir_version = 8  # the IR of opset 17; newer onnx packages default to a newer one
    onnx.checker.check_model(proto, full_check=True)
    return proto


def write(model, path):
    """Write ``model``'s graph to ``path`` atomically; returns the path."""
    from ..atomic import write_bytes_atomic
    return write_bytes_atomic(path, build(model).SerializeToString())
