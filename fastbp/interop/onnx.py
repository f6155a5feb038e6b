"""Write a network as an ONNX graph (``MLP.to_onnx``, the estimators' ``to_onnx``).

Imported only by the ``to_onnx`` methods, so onnx stays optional. Each layer is one
``Gemm`` (``X·W + b``; ONNX's row-major ``B`` is fastbp's ``(fan_in, fan_out)``
as it is) followed by its activation, in the form its registry entry gives
(``fastbp.kernels.activations``): one ONNX operator of the same function, or a
small composition of elementwise operators where ONNX Runtime's CPU kernel
exists for float32 only (``Elu``, ``Softplus``, ``HardSigmoid``) or takes its
parameter as a float32 attribute (``LeakyRelu``).

Outputs: ``output``, the output activations (``predict_proba`` of a
classifier, ``predict`` of a regressor as ``(n_samples, n_outputs)``), and for
classifiers ``label``, what ``predict`` returns (int64). Given an estimator's
``classes``, ``label`` holds the classes themselves, and a binary classifier's
``output`` both columns of ``predict_proba``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..kernels.activations import ACTIVATIONS
from ..kernels.losses import LOSSES

if TYPE_CHECKING:
    from ..network import Network

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


def build(network: Network, classes: npt.ArrayLike | None = None) -> onnx.ModelProto:
    """The ``onnx.ModelProto`` of ``network`` (a ``fastbp.network.Network``), checked by
    ``onnx.checker``; ``classes``: an estimator's ``classes_``, which ``label`` answers in."""
    elem = TensorProto.FLOAT if network.dtype == np.float32 else TensorProto.DOUBLE
    g = _Graph(network.dtype)
    targets = LOSSES[network.loss].targets  # what predict returns, as MLP.predict
    n_samples, n_out = "n_samples", network.layer_sizes[-1]
    if classes is not None and targets == "unit" and n_out == 1:
        # an estimator's binary classifier: scikit-learn's predict_proba is [1 - p, p]
        scores = _layers(g, "X", network, None)
        g.op("Concat", [g.op("Sub", [g.const("one", [[1.0]]), scores]), scores],
             output="output", axis=1)
        width = 2
    else:
        scores = _layers(g, "X", network, "output")
        width = n_out
    outputs = [helper.make_tensor_value_info("output", elem, [n_samples, width])]
    if targets in ("labels", "unit"):
        multilabel = targets == "unit" and n_out > 1
        _label(g, scores, targets, multilabel, None if multilabel else classes)
        label_type = (TensorProto.INT64 if classes is None or multilabel
                      else helper.np_dtype_to_tensor_dtype(np.asarray(classes).dtype))
        outputs.append(helper.make_tensor_value_info(
            "label", label_type, [n_samples, n_out] if multilabel else [n_samples]))
    return _model(g, network, elem, outputs)


def _layers(g, x, network, last_output):
    """The nodes of every layer from input ``x``; returns the output activations' name."""
    layout = network.layout
    n_layers = len(network.coefs)
    for l, (W, b) in enumerate(zip(network.coefs, network.intercepts)):
        z = g.op("Gemm", [x, g.const(f"W{l}", W), g.const(f"b{l}", b)], stem=f"z{l}")
        x = _activation(g, layout.activations[l], z, layout.gamma_per_layer[l],
                        network.slopes.get(l), last_output if l == n_layers - 1 else None)
    return x


def _label(g, scores, targets, multilabel, classes):
    """``label``, what ``predict`` returns, from the output activations ``scores``: the
    class index (looked up in ``classes`` when given), or the 0/1 matrix of a multilabel
    output."""
    if multilabel:
        g.op("Cast", [g.op("Greater", [scores, g.const("threshold", 0.5)])], output="label",
             to=TensorProto.INT64)
        return
    index_name = "label" if classes is None else None
    if targets == "labels":  # softmax: the class of the largest probability
        index = g.op("ArgMax", [scores], output=index_name, axis=1, keepdims=0)
    else:  # one logistic unit: above 1/2, the second class
        above = g.op("Cast", [g.op("Greater", [scores, g.const("threshold", 0.5)])],
                     to=TensorProto.INT64)
        index = g.op("Squeeze", [above, g.const("axis", [1], np.int64)], output=index_name)
    if classes is not None:
        g.op("Gather", [g.const("classes", classes, np.asarray(classes).dtype), index],
             output="label", axis=0)


def _model(g, network, elem, outputs):
    from .. import __version__
    graph = helper.make_graph(
        g.nodes, "fastbp_mlp",
        [helper.make_tensor_value_info("X", elem, ["n_samples", network.layer_sizes[0]])],
        outputs, g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="fastbp", producer_version=__version__,
                              doc_string=f"{network.layout.describe()}, loss={network.loss}")
    proto.ir_version = 8  # the IR of opset 17; newer onnx packages default to a newer one
    onnx.checker.check_model(proto, full_check=True)
    return proto


def write(network: Network, path: str | os.PathLike[str],
          classes: npt.ArrayLike | None = None) -> Path:
    """Write ``network``'s graph (see ``build``) to ``path`` atomically; returns the path."""
    from ..atomic import write_bytes_atomic
    return write_bytes_atomic(path, build(network, classes).SerializeToString())
