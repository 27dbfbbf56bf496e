"""A custom function with a hand-written backward: ``line(w, x, b) = w*x + b``.

Load it with ``gradcli --plugin examples/line.py`` (or list it in ``GRADCLI_PLUGINS``); ``line``
is then callable in expressions, listed by ``gradcli functions`` and checkable by ``gradcli check``::

    gradcli eval "sum(line(w, x, b))" --plugin examples/line.py \\
        --w "[[1, 2], [3, 4]]" --x "[[5, 6], [7, 8]]" --b "[[0, 0], [0, 1]]"

It is a line-for-line port of the way PyTorch users write the same thing. On the left what a
PyTorch user would write, on the right where it went in gradcli:

    class Line(torch.autograd.Function):           class Line(gradcli.Function):
        @staticmethod                                  (a method: ``self`` plays ``ctx``)
        def forward(ctx, w, x, b):                     def forward(self, w, x, b):
            ctx.save_for_backward(w, x, b)                 self.save_for_backward(w, x, b)
            return w * x + b                               return w * x + b

        @staticmethod
        def backward(ctx, grad_out):                   def backward(self, gy):
            w, x, b = ctx.saved_tensors                    w, x, b = self.saved_tensors
            return grad_out * x, grad_out * w, grad_out    return gy * x, gy * w, gy

    line = Line.apply                              @gradcli.register("line") names it

Two differences matter. ``forward`` gets NumPy arrays and ``backward`` gets Variables (the
saved arrays come back as the input Variables), so backward written with Variable arithmetic
is itself differentiable and higher derivatives work. And PyTorch requires every gradient to
have its input's shape; here the inputs may broadcast against each other, and the engine sums
each gradient back to its input's shape (e.g. a scalar ``b`` gets the sum of ``gy``), so backward
returns the gradients in the output's shape.
"""

from __future__ import annotations

from typing import Any

import gradcli
from gradcli.engine import Variable


@gradcli.register("line", rule="d/dw = x, d/dx = w, d/db = 1")
class Line(gradcli.Function):
    """w*x + b, elementwise with broadcasting (a custom Function with a hand-written backward)"""

    def forward(self, w: Any, x: Any, b: Any) -> Any:
        self.save_for_backward(w, x, b)
        return w * x + b

    def backward(self, gy: Variable) -> tuple[Variable, Variable, Variable]:
        w, x, b = self.saved_tensors
        return gy * x, gy * w, gy
