"""The converter's working graph node and its errors, shared by the lowering
modules (onnx2eex.py, lower_ext.py)."""


class ConvertError(Exception):
    """A model the converter cannot express in .eex v1; the message says why."""


class UnsupportedOp(ConvertError):
    pass


class Node:
    __slots__ = ("op", "name", "inputs", "outputs", "attrs", "src")

    def __init__(self, op, name, inputs, outputs, attrs=None, src=None):
        self.op, self.name = op, name
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.attrs = dict(attrs or {})
        self.src = src or op          # the ONNX op type this came from, for messages

    def __repr__(self):
        return f"Node({self.op} {self.name!r} {self.inputs} -> {self.outputs})"


def where(n):
    return f"(node '{n.name}')"


def bad_attr(n, key, value):
    return UnsupportedOp(f"unsupported attribute {key}={value!r} on ONNX op '{n.src}' "
                         f"{where(n)}")
