"""A Plan's run program as one generated Python function of straight-line calls.

Walking a step list costs ~0.4 us a step in the interpreter loop (unpacking the step,
fetching operands from a slot list, storing results, clearing dead slots): a fifth of a
small decoder's run. Generated code keeps values in local variables instead:

    def program(inputs):
        v0 = asarray(inputs['input_ids'])
        v7 = ref_3((v0, v2), attrs_3)[0]
        if type(v7) is not ndarray: v7 = asarray(v7)
        del v0
        ...
        return {'logits': v40}

Constants and weights are globals of the function's namespace (never assigned or
deleted inside it, so Python resolves them as globals); a value is deleted after its
last use, as the loop clears its slot. Each step's call line is recorded so an
IndexError (data-dependent: Gather indices, token ids) is reported against its op.
"""
from __future__ import annotations

import numpy as np


class StraightLineProgram:
    """`program(inputs) -> outputs` for steps whose result types need no re-check."""

    def __init__(self, plan, refs: list):
        template = plan._sources_template()
        namespace: dict = {"asarray": np.asarray, "ndarray": np.ndarray}
        sources = set()
        for slot, value in enumerate(template):
            if value is not None:
                namespace[f"v{slot}"] = value
                sources.add(slot)
        lines = ["def program(inputs):"]
        for name, slot in plan.args:
            lines.append(f"    v{slot} = asarray(inputs[{name!r}])")
        self._line_op: dict[int, object] = {}
        for i, ((op, _, attrs, ins, outs, _types, _static, free, _dtypes), ref) in \
                enumerate(zip(plan.steps, refs)):
            namespace[f"ref_{i}"], namespace[f"attrs_{i}"] = ref, attrs
            operands = "".join(f"v{s}, " for s in ins)
            call = f"ref_{i}(({operands}), attrs_{i})"
            self._line_op[len(lines) + 1] = op
            if len(outs) == 1:
                lines.append(f"    v{outs[0]} = {call}[0]")
            else:
                lines.append(f"    outs = {call}")
                lines.extend(f"    v{s} = outs[{k}]" for k, s in enumerate(outs))
            lines.extend(f"    if type(v{s}) is not ndarray: v{s} = asarray(v{s})"
                         for s in outs)
            dead = [f"v{s}" for s in free if s not in sources]
            if dead:
                lines.append(f"    del {', '.join(dead)}")
        results = ", ".join(f"{name!r}: v{slot}" for name, slot in plan.outputs)
        lines.append(f"    return {{{results}}}")
        code = compile("\n".join(lines) + "\n", f"<plan {plan.graph.name}>", "exec")
        exec(code, namespace)  # noqa: S102 -- source built above from slot numbers only
        self.program = namespace["program"]

    def op_of(self, error: BaseException):
        """The op whose call raised `error` (from the generated frame's line), or None."""
        tb, op = error.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code is self.program.__code__:
                op = self._line_op.get(tb.tb_lineno, op)
            tb = tb.tb_next
        return op
