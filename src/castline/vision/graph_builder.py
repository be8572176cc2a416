"""A thin helper for writing ONNX graphs from numpy arrays: names, constants and nodes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class GraphBuilder:
    """Collects nodes and initializers; each op returns the name of its (first) output."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: Any, hint: str = "c", dtype: Any = np.float32) -> str:
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def named(self, value: Any, name: str, dtype: Any = np.float32) -> str:
        """A constant under a stable name, for arrays found again in a saved graph."""
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def ints(self, values: Sequence[int], hint: str = "i") -> str:
        return self.const(np.asarray(values, dtype=np.int64), hint, np.int64)

    def op(self, op_type: str, inputs: Sequence[str], hint: str = "", **attrs: Any) -> str:
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def op_multi(
        self, op_type: str, inputs: Sequence[str], n_out: int, hint: str = "", **attrs: Any
    ) -> list[str]:
        outs = [self.fresh(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs

    def rename(self, name: str, new_name: str) -> str:
        """Expose an internal value under a stable graph-output name."""
        self.nodes.append(helper.make_node("Identity", [name], [new_name]))
        return new_name

    def model(
        self,
        inputs: Sequence[onnx.ValueInfoProto],
        outputs: Sequence[tuple[str, Any, Any]],
        name: str,
        metadata: dict[str, str] | None = None,
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            name,
            list(inputs),
            [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
            self.initializers,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="castline",
        )
        model.ir_version = 8
        for key, value in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(model)
        return model


FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64
UINT8 = TensorProto.UINT8
