"""Conversions to and from other frameworks, each imported only when used so that its
framework stays optional: ``torch`` (``torch.nn.Sequential``) and ``onnx`` (an ONNX graph)."""

__all__ = []
