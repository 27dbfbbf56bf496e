"""Text to Program: load the grammar, build instructions in the parser's callbacks, and turn
Lark's errors into messages a person reads.

The LALR parser calls one method per grammar alternative as it reduces (Lark's ``transformer=``),
so the Program is built bottom-up while parsing: no parse tree, no recursive walk, and a
100,000-deep expression costs the same per node as a short one. Method names match the grammar's
alternative names, which match the registry's function names. A few calls are language forms that
mean more than one registry function (:data:`_FORMS`: ``grad``, ``max``/``min`` of several
expressions, ``log(x, base)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

from .engine import Variable, paused_gc
from .functions.registry import REGISTRY, WHOLE_NUMBER_OPTIONS, RegistryError, Spec, lookup
from .program import CALL, CONST, GRAD, INPUT, NO_OPTIONS, UNPACK, ExpressionError, Op, Program

ParseError = ExpressionError

# Names that stand for a value. ``None`` is only an option (axis=None) or a subscript (x[None]).
CONSTANTS: dict[str, Any] = {
    "pi": math.pi,
    "π": math.pi,
    "e": math.e,
    "inf": math.inf,
    "nan": math.nan,
    "True": True,
    "False": False,
    "None": None,
}
#: Forms the language reads itself (beyond calls of registered functions), as written, with their docs.
SPECIAL_FORMS = {
    "grad(EXPR, NAME)": "the derivative of EXPR with respect to NAME, as a value (itself differentiable)",
    "max(a, b, ...)": "the elementwise largest of two or more expressions (max(x, axis=0) reduces)",
    "min(a, b, ...)": "the elementwise smallest of two or more expressions (min(x, axis=0) reduces)",
    "log(x, base)": "the logarithm to a base, log(x)/log(base), differentiable in both",
    "a if cond else b": "where(cond, a, b): the derivative of the branch taken",
    "[a, b, ...]": "an array of expressions (stack); of numbers only, a constant",
}


# --- what the callbacks pass up: a slot, a constant not yet placed, or a name not yet resolved ---
# (plain classes, not dataclasses: creating a dataclass runs exec, and startup time is a feature)
class _Ref:
    __slots__ = ("pos",)
    pos: int


class Slot(_Ref):
    __slots__ = ("index",)

    def __init__(self, index: int, pos: int) -> None:
        self.index, self.pos = index, pos


class Const(_Ref):
    __slots__ = ("value",)

    def __init__(self, value: Any, pos: int) -> None:  # a Python number or nested list of numbers
        self.value, self.pos = value, pos


class Name(_Ref):
    __slots__ = ("name",)

    def __init__(self, name: str, pos: int) -> None:
        self.name, self.pos = name, pos


class Keyword(_Ref):
    __slots__ = ("name", "value")

    def __init__(self, name: str, value: Any, pos: int) -> None:
        self.name, self.value, self.pos = name, value, pos


class SliceRef(_Ref):
    __slots__ = ("parts",)

    def __init__(self, parts: tuple[Any, Any, Any], pos: int) -> None:
        self.parts, self.pos = parts, pos


class _Builder:
    """The state of one parse: instructions so far, assigned names, inputs seen."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.ops: list[Op] = []
        self.assigned: dict[str, int] = {}
        self.input_slots: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self.outputs: tuple[int, ...] | None = None

    def error(self, message: str, pos: int) -> ExpressionError:
        return ExpressionError(message, self.text, pos)

    def emit(self, op: Op) -> int:
        self.ops.append(op)
        return len(self.ops) - 1

    def resolve(self, ref: Any) -> int:
        """The slot holding ``ref``'s value, emitting an input or constant instruction if needed."""
        kind = type(ref)
        if kind is Slot:
            return ref.index
        if kind is Name:
            name = ref.name
            slot = self.assigned.get(name)
            if slot is not None:
                return slot
            slot = self.input_slots.get(name)
            if slot is not None:
                if ref.pos < self.ops[slot].where:
                    # Names resolve in reduce order, not text order (x + sin(y) reduces sin(y)
                    # first): an input's place is where it first appears, which orders the inputs.
                    self.ops[slot].where = ref.pos
                return slot
            if name in CONSTANTS:
                constant = CONSTANTS[name]
                if constant is None:
                    raise self.error("None is an option (axis=None) or in x[None, :], not a value", ref.pos)
                return self.emit(Op(CONST, (), None, NO_OPTIONS, Variable(constant, None, False), ref.pos))
            self.input_slots[name] = slot = self.emit(Op(INPUT, (), None, NO_OPTIONS, name, ref.pos))
            return slot
        if kind is Const:
            value = ref.value
            if isinstance(value, str):
                raise self.error(
                    'a string is an option of a function (einsum("ij,jk->ik", a, b)), not a value', ref.pos
                )
            try:
                variable = Variable(value, None, False)
            except (TypeError, ValueError) as exc:
                raise self.error(f"not an array of numbers: {exc}", ref.pos) from None
            return self.emit(Op(CONST, (), None, NO_OPTIONS, variable, ref.pos))
        if kind is Keyword:
            raise self.error(f"keyword argument {ref.name}= is only allowed inside a call", ref.pos)
        if kind is SliceRef:
            raise self.error("a slice (':') is only allowed inside [...]", ref.pos)
        raise self.error("'...' is only allowed inside [...]", ref.pos)

    def value(self, ref: Any) -> int:
        """The slot of ``ref`` used as one value: a function with several outputs must be unpacked."""
        if type(ref) is not Slot:  # a name or a constant: never several outputs (see assign)
            return self.resolve(ref)
        slot = ref.index
        op = self.ops[slot]
        if op.kind == CALL and op.spec is not None and op.spec.n_outputs > 1:
            name = op.spec.name
            raise self.error(
                f"{name}() has several outputs: unpack them first, e.g. a, b = {name}(...)", op.where
            )
        return slot

    def constant(self, ref: Any, what: str) -> Any:
        if isinstance(ref, Const):
            return ref.value
        if isinstance(ref, Name) and ref.name in CONSTANTS and ref.name not in self.assigned:
            return CONSTANTS[ref.name]
        raise self.error(f"{what} must be a number written in the expression", _pos(ref))

    def option(self, ref: Any, what: str, kind: Any) -> Any:
        """The value of a function's option, written in the expression. ``kind`` "whole": whole
        numbers, one or a list of them (within int64, as NumPy's axes and counts), or None;
        ``bool`` (an option whose default is True or False): True or False, or 1 or 0."""
        value = _tidy_param(self.constant(ref, what))
        if kind is bool:
            if value not in (True, False) or not isinstance(value, (bool, int)):
                shown = repr(value) if isinstance(value, (int, float, str)) else "a list"
                raise self.error(f"{what} must be True or False, got {shown}", _pos(ref))
            return bool(value)
        if kind == "whole" and value is not None:  # (None: the default, e.g. every axis)
            for v in value if isinstance(value, tuple) else (value,):
                if type(v) is not int:
                    shown = repr(v) if isinstance(v, (int, float, str, bool)) else "a list"
                    raise self.error(f"{what} must be a whole number, got {shown}", _pos(ref))
                if not -(2**63) <= v < 2**63:
                    raise self.error(f"{what} is too large (at most 2**63 - 1), got {v:.3g}", _pos(ref))
        return value

    def call(self, spec: Spec, args: Sequence[Any], pos: int) -> Slot:
        """Emit a call of ``spec``. Positional arguments are its inputs, then its options in order;
        a string is never an input, so it fills the next option wherever it stands
        (``einsum("ij,jk->ik", a, b)``)."""
        least, most = spec.arity
        inputs: list[Any] = []
        extra: list[Any] = []
        keywords: dict[str, Keyword] = {}
        for a in args:
            if isinstance(a, Keyword):
                if a.name in keywords:
                    raise self.error(f"{spec.name}() got {a.name!r} twice", a.pos)
                keywords[a.name] = a
            elif (most is None or len(inputs) < most) and not _is_string(a):
                inputs.append(a)
            else:
                extra.append(a)
        string = next((a for a in extra if _is_string(a)), None)
        if string is not None and (len(inputs) < least or not spec.params):
            self.resolve(string)  # the error that says what a string is for
        for name, kw in keywords.items():
            if name in spec.inputs and name not in spec.param_names:
                said = f"{spec.name}() takes its inputs by position, not by name ({name}=...)"
                raise self.error(f"{said}: {spec.signature()}", kw.pos)
        if len(inputs) < least:
            raise self.error(f"{spec.takes(len(inputs))}: {spec.signature()}", pos)
        if len(extra) > len(spec.params):
            raise self.error(f"{spec.name}() got too many arguments: {spec.signature()}", _pos(extra[-1]))
        whole = WHOLE_NUMBER_OPTIONS.get(spec.name, ())
        kinds = {name: "whole" if name in whole else type(default) for name, default in spec.params}
        params = {
            name: self.option(a, f"{spec.name}() argument '{name}'", kinds[name])
            for (name, _), a in zip(spec.params, extra)
        }
        for name, kw in keywords.items():
            if name not in spec.param_names:
                valid = ", ".join(spec.param_names) or "none"
                raise self.error(f"{spec.name}() has no option {name!r} (options: {valid})", kw.pos)
            if name in params:
                raise self.error(f"{spec.name}() got {name!r} twice", kw.pos)
            params[name] = self.option(kw.value, f"{spec.name}() option '{name}'", kinds[name])
        slots = tuple(self.value(a) for a in inputs)
        return Slot(self.emit(Op(CALL, args=slots, spec=spec, params=params, where=pos, n_outputs=1)), pos)

    def apply(self, name: str, args: Sequence[Any], pos: int) -> Slot:
        """A call of the registered function ``name``: what an operator or a language form means."""
        try:
            spec = REGISTRY[name]
        except KeyError:
            raise self.error(f"this needs the function {name!r}, which is not registered", pos) from None
        if len(args) == 2 and spec.binary:
            # An operator: two inputs and no options, without call's sorting of arguments (most
            # instructions of a long expression are these).
            a, b = args
            if (type(a) is not Const or type(a.value) is not str) and (
                type(b) is not Const or type(b.value) is not str
            ):
                ops = self.ops
                ops.append(Op(CALL, (self.value(a), self.value(b)), spec, NO_OPTIONS, None, pos))
                return Slot(len(ops) - 1, pos)
        return self.call(spec, args, pos)


def _is_string(ref: Any) -> bool:
    return isinstance(ref, Const) and isinstance(ref.value, str)


def _pos(ref: Any) -> int:
    return getattr(ref, "pos", 0)


def _tidy_param(v: Any) -> Any:
    """Integral floats become ints (axis=1.0 reads as axis=1); lists of numbers become tuples."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, list):
        return tuple(_tidy_param(x) for x in v)
    return v


_current: ContextVar[_Builder] = ContextVar("gradcli_parse")


def _b() -> _Builder:
    return _current.get()


def _binary(name: str) -> Callable[[Any, list[Any]], Slot]:
    """The callback of an operator of two operands: a call of the registry function ``name``,
    at the right operand (one call deep: most reductions of a long expression are these)."""

    def callback(self: Any, children: list[Any]) -> Slot:
        return _current.get().apply(name, children, getattr(children[1], "pos", 0))

    callback.__name__ = callback.__qualname__ = name
    return callback


class _Callbacks:
    """Called by the LALR parser at each reduction; one method per named grammar alternative."""

    # -- leaves --------------------------------------------------------------------------
    def number(self, children: list[Any]) -> Const:
        tok = children[0]
        return Const(_number(tok.value), tok.start_pos)

    def string(self, children: list[Any]) -> Const:
        tok = children[0]
        return Const(str(tok)[1:-1], tok.start_pos)

    def name(self, children: list[Any]) -> Name:
        tok = children[0]
        return Name(tok.value, tok.start_pos)

    def array(self, children: list[Any]) -> Any:
        items = children[0] if children and children[0] is not None else []
        b = _b()
        pos = _pos(items[0]) if items else 0
        if not all(_is_number(b, item) for item in items):
            # Expressions inside: the array is computed, and differentiable, as a stack.
            return b.apply("stack", [Slot(b.value(item), _pos(item)) for item in items], pos)
        values = [b.constant(item, "an element of an array literal [...]") for item in items]
        try:
            np.array(values, dtype=np.float64)
        except ValueError:
            depth, level = 1, values
            while depth <= 64 and level and isinstance(level[0], list):
                depth, level = depth + 1, level[0]
            if depth > 64:  # (NumPy's limit, which it reports as a ragged array)
                deep = "array literal nested more than 64 deep: an array has at most 64 axes"
                raise b.error(deep, pos) from None
            raise b.error("array literal is ragged: every row needs the same length", pos) from None
        return Const(values, pos)

    # -- operators: each is a call of the registry function of the same name -------------
    add = _binary("add")
    sub = _binary("sub")
    mul = _binary("mul")
    div = _binary("div")
    matmul = _binary("matmul")
    floor_divide = _binary("floor_divide")
    mod = _binary("mod")
    pow = _binary("pow")

    def superscript(self, c: list[Any]) -> Slot:
        x, tok = c
        exponent = Const(_number(str(tok).translate(_SUPERSCRIPT_DIGITS)), tok.start_pos)
        return _b().apply("pow", [x, exponent], tok.start_pos)

    def neg(self, c: list[Any]) -> Any:
        (x,) = c
        b = _b()
        if _is_number(b, x):  # -2 and -pi are numbers, so [-1, -pi] is a constant
            number = b.constant(x, "")
            if isinstance(number, (int, float)):
                return Const(-number, x.pos)
        return b.apply("neg", [x], _pos(x))

    def pos(self, c: list[Any]) -> Any:
        return c[0]

    # -- comparisons, logic, conditional expressions ---------------------------------------
    def compare(self, c: list[Any]) -> Slot:
        b = _b()
        left, result = c[0], None
        for k in range(1, len(c), 2):
            tok, right = c[k], c[k + 1]
            test = b.apply(_COMPARISONS[str(tok)], [left, right], tok.start_pos)
            result = test if result is None else b.apply("logical_and", [result, test], tok.start_pos)
            left = right
        assert result is not None
        return result

    logical_and = _binary("logical_and")
    logical_or = _binary("logical_or")

    def logical_not(self, c: list[Any]) -> Slot:
        (x,) = c
        return _b().apply("logical_not", [x], _pos(x))

    def if_else(self, c: list[Any]) -> Slot:
        taken, cond, other = c
        return _b().apply("where", [cond, taken, other], _pos(cond))

    # -- calls, indexing --------------------------------------------------------------------
    def call(self, children: list[Any]) -> Slot:
        tok, args = children
        args = args or []
        b = _b()
        name, pos = str(tok), tok.start_pos
        form = _FORMS.get(name)
        if form is not None:
            slot = form(b, args, pos)
            if slot is not None:
                return slot
        try:
            spec = lookup(name)
        except RegistryError as exc:
            raise b.error(str(exc), pos) from None
        return b.call(spec, args, pos)

    def arguments(self, children: list[Any]) -> list[Any]:
        return children

    def keyword(self, children: list[Any]) -> Keyword:
        tok, value = children
        return Keyword(str(tok), value, tok.start_pos)

    def getitem(self, children: list[Any]) -> Slot:
        x, subs = children
        b = _b()
        index = tuple(_subscript(b, s) for s in subs)
        key = index[0] if len(index) == 1 else index
        return b.call(REGISTRY["getitem"], [x, Keyword("index", Const(key, _pos(x)), _pos(x))], _pos(x))

    def subscripts(self, children: list[Any]) -> list[Any]:
        return children

    def slice(self, children: list[Any]) -> SliceRef:
        start, stop, step = children
        pos = next((_pos(p) for p in children if p is not None), 0)
        return SliceRef((start, stop, step), pos)

    def ellipsis(self, children: list[Any]) -> Const:
        return Const(Ellipsis, 0)

    # -- statements -------------------------------------------------------------------------
    def exprlist(self, children: list[Any]) -> list[Any]:
        return children

    def output(self, children: list[Any]) -> tuple[str, Any]:
        return ("output", children[0])

    def assign(self, children: list[Any]) -> tuple[str, Any]:
        targets, value = children
        b = _b()
        for t in targets:
            if not isinstance(t, Name):
                raise b.error("only names can be assigned to (a = ...; a, b = ...)", _pos(t))
            if t.name in CONSTANTS:
                raise b.error(f"cannot assign to the constant {t.name!r}", t.pos)
            if t.name in b.input_slots:
                raise b.error(
                    f"{t.name!r} is already an input of the expression (used before this line); "
                    "choose another name",
                    t.pos,
                )
        if len(targets) == 1:
            slot = b.value(value)
            b.assigned[targets[0].name] = slot
            b.names.setdefault(slot, targets[0].name)
        else:
            slot = b.resolve(value)
            op = b.ops[slot]
            if op.kind == CALL and op.spec is not None and op.spec.n_outputs == 1:
                raise b.error(
                    f"{op.spec.name}() has one output: it cannot be unpacked into {len(targets)} names",
                    op.where,
                )
            if op.kind != CALL:
                raise b.error(
                    f"{len(targets)} names need a function with {len(targets)} outputs on the right",
                    _pos(value),
                )
            b.ops[slot] = Op(CALL, op.args, op.spec, op.params, op.value, op.where, n_outputs=len(targets))
            for k, t in enumerate(targets):
                s = b.emit(Op(UNPACK, args=(slot,), value=(k, len(targets)), where=t.pos))
                b.assigned[t.name] = s
                b.names[s] = t.name
        return ("assign", None)

    def start(self, children: list[Any]) -> None:
        b = _b()
        if not children:
            raise b.error("the expression is empty (only comments or separators)", 0)
        *head, last = children
        if last[0] != "output":
            raise b.error(
                "the last statement must be the expression to evaluate, not an assignment",
                len(b.text.rstrip()),
            )
        stray = next((refs for kind, refs in head if kind == "output"), None)
        if stray is not None:
            raise b.error(
                "only the last statement is evaluated: give earlier ones a name (a = ...)", _pos(stray[0])
            )
        slots = [b.value(r) for r in last[1]]
        b.outputs = tuple(slots)


def _number(text: str) -> float | int:
    """A literal's value: integers stay exact (axis=1, x[2]); one beyond float64's reach is inf."""
    return int(text) if text.isdigit() and len(text) <= 18 else float(text)


def _int(b: _Builder, v: Any, pos: int) -> Any:
    if v is None:
        return None
    if isinstance(v, bool) or (isinstance(v, float) and v.is_integer()):
        v = int(v)
    if not isinstance(v, int):
        raise b.error(f"an index must be a whole number, got {v!r}", pos)
    return v


def _subscript(b: _Builder, s: Any) -> Any:
    """One part of ``x[...]`` as NumPy takes it: a slice, an integer, an integer array (a list of
    numbers), ``None`` (a new axis) or ``...``."""
    if isinstance(s, SliceRef):
        parts = [None if p is None else b.constant(p, "a slice bound") for p in s.parts]
        return slice(*[_int(b, p, s.pos) for p in parts])
    v = b.constant(s, "an index")
    if v is Ellipsis or v is None:
        return v
    if isinstance(v, list):
        indices = np.array(v, dtype=np.float64)
        if not np.all((indices == np.round(indices)) & (np.abs(indices) < 2.0**62)):
            raise b.error("an index array must hold whole numbers", _pos(s))
        return indices.astype(np.intp)
    index = _int(b, v, _pos(s))
    if isinstance(index, int) and abs(index) >= 2**62:  # (NumPy: "only integers, slices ... are valid")
        raise b.error(f"the index {float(index):.6g} is out of range for any array", _pos(s))
    return index


def _is_number(b: _Builder, ref: Any) -> bool:
    """A number or array of numbers written in the text (not a string, not None, not computed)."""
    if isinstance(ref, Const):
        return not isinstance(ref.value, str)
    if isinstance(ref, Name):
        return ref.name in CONSTANTS and ref.name not in b.assigned and CONSTANTS[ref.name] is not None
    return False


_COMPARISONS = {
    "<": "less",
    "<=": "less_equal",
    "≤": "less_equal",
    ">": "greater",
    ">=": "greater_equal",
    "≥": "greater_equal",
    "==": "equal",
    "!=": "not_equal",
    "≠": "not_equal",
}
_SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")


# --- language forms: calls that mean something other than one registry function ----------------
# Each takes the builder, the arguments and the call's offset, and returns the result, or None
# to leave the call to the registry function of that name.


def _grad_form(b: _Builder, args: list[Any], pos: int) -> Slot | None:
    if "grad" in REGISTRY:  # a plugin's function of that name wins
        return None
    if len(args) != 2 or any(isinstance(a, Keyword) for a in args) or not isinstance(args[1], Name):
        raise b.error("grad takes an expression and a variable name: grad(EXPR, x)", pos)
    name = args[1]
    if name.name in CONSTANTS and name.name not in b.assigned:
        raise b.error(f"grad(): {name.name!r} is a constant, not a variable", name.pos)
    y, x = b.value(args[0]), b.value(name)
    if name.name in b.assigned:
        # A name assigned a constant (y = 2) has no graph behind it: it becomes a leaf to
        # differentiate with respect to.
        b.ops[x].leaf = True
    return Slot(b.emit(Op(GRAD, args=(y, x), where=pos)), pos)


def _extreme_form(elementwise: str) -> Any:
    """max/min: of several expressions elementwise (Python's max(a, b)), of one a reduction."""

    def form(b: _Builder, args: list[Any], pos: int) -> Slot | None:
        positional = [a for a in args if not isinstance(a, Keyword)]
        if len(positional) < 2:
            return None
        name = "max" if elementwise == "maximum" else "min"
        for a in args:
            if isinstance(a, Keyword):
                raise b.error(
                    f"{name}() of several expressions is elementwise, as in Python: it has no option "
                    f"{a.name}= ({name}(x, {a.name}=...) reduces one array)",
                    a.pos,
                )
        result = positional[0]
        for other in positional[1:]:
            result = b.apply(elementwise, [result, other], pos)
        return result

    return form


def _log_form(b: _Builder, args: list[Any], pos: int) -> Slot | None:
    """log(x, base) = log(x) / log(base), differentiable in both."""
    positional = [a for a in args if not isinstance(a, Keyword)]
    keywords = [a for a in args if isinstance(a, Keyword)]
    if len(positional) == 2 and not keywords:
        x, base = positional
    elif len(positional) == 1 and len(keywords) == 1 and keywords[0].name == "base":
        x, base = positional[0], keywords[0].value
    else:
        return None
    return b.apply("div", [b.apply("log", [x], pos), b.apply("log", [base], pos)], pos)


_FORMS = {
    "grad": _grad_form,
    "max": _extreme_form("maximum"),
    "min": _extreme_form("minimum"),
    "log": _log_form,
}


# --- the parser, built once per process ----------------------------------------------------


def grammar_path() -> Path:  # pathlib only here: it is not needed to parse
    """The grammar file: in the installed package, or at the root of a source checkout."""
    from pathlib import Path

    here = Path(__file__).resolve().parent
    for candidate in (here / "grammars" / "gradcli.lark", here.parent / "grammars" / "gradcli.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("gradcli's grammar file (grammars/gradcli.lark) is missing from the installation")


def _get_parser() -> Any:
    """The LALR parser, built once per process.

    It runs the tables Lark builds from the grammar (``tools/build_parser.py`` writes them to
    ``_lalr_tables``) with a small driver (``_lalr``), so parsing starts without importing lark; a
    test keeps the tables in sync with ``grammars/gradcli.lark`` and the two parsers in agreement.
    """
    global _parser
    if _parser is None:
        from . import _lalr, _lalr_tables

        _parser = _lalr.Parser(_lalr_tables, _Callbacks())
    return _parser


def lark_parser() -> Any:
    """A parser built by lark from the grammar file itself (for the sync test and for tools)."""
    from lark import Lark

    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        transformer=_Callbacks(),
        maybe_placeholders=True,
    )


_parser: Any = None


# --- errors in words ---------------------------------------------------------------------------

_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "EQUAL": "'='",
    "COLON": "':'",
    "ELSE": "'else'",
    "_SEP": "a new statement (';' or a new line)",
    "$END": "the end of the expression",
}
_STARTS_EXPR = {"NAME", "NUMBER", "STRING", "NOT", "_ELLIPSIS"}
_OPERATORS = {
    *("PLUS", "_MINUS", "_TIMES", "_DIVIDE", "_FLOOR_DIVIDE", "PERCENT", "AT", "_POW", "SUPERSCRIPT"),
    *("COMPARE", "AND", "OR", "IF", "LSQB", "LPAR"),
}
# Characters of other languages, and what gradcli writes instead.
_INSTEAD = {"&": "'and'", "|": "'or'", "~": "'not'", "!": "'not' (and != for not equal)"}


def _open_brackets(text: str) -> list[str]:
    """The brackets still open in ``text`` (comments skipped): the context of an error."""
    stack: list[str] = []
    comment = False
    quote = ""
    for ch in text:
        if comment:
            comment = ch != "\n"
        elif quote:
            quote = "" if ch in (quote, "\n") else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            comment = True
        elif ch in "([":
            stack.append(ch)
        elif ch in ")]" and stack:
            stack.pop()
    return stack


def _expected_words(expected: set[str], before: str = "") -> str:
    """Lark's terminal names in words: 'an expression', 'an operator', "')'".

    LALR merges the lookaheads of similar states, so Lark may list a ')' with no '(' open;
    those are dropped by looking at which brackets really are open before the fault.
    """
    expected = set(expected)
    stack = _open_brackets(before)
    if "(" not in stack:
        expected.discard("RPAR")
    if "[" not in stack:
        expected.discard("RSQB")
    if not stack or stack[-1] != "[":
        expected.discard("COLON")
    if stack:  # a statement cannot end inside brackets
        expected -= {"_SEP", "$END"}
    if "ELSE" in expected and not _open_if(before):
        expected.discard("ELSE")
    words: list[str] = []
    if expected & _STARTS_EXPR:
        words.append("an expression")
    elif "_TIMES" in expected:
        words.append("an operator")
    rest = expected - _STARTS_EXPR - _OPERATORS
    if len(rest) > 1:
        rest.discard("EQUAL")  # '=' only matters where it is the one thing that fits
    for term in sorted(rest, key=lambda t: (t == "$END", t)):
        if term in _WORDS:
            words.append(_WORDS[term])
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _before(text: str, pos: int) -> str:
    prev = text[:pos].rstrip()
    if not prev:
        return ""
    tail = prev[-1]
    if tail.isalnum() or tail == "_" or tail == ".":
        i = len(prev)
        while i > 0 and (prev[i - 1].isalnum() or prev[i - 1] in "_."):
            i -= 1
        tail = prev[i:]
    elif tail in "'\"":  # a string
        tail = prev[prev.rfind(tail, 0, len(prev) - 1) :]
    elif tail in _OPERATOR_CHARACTERS:  # an operator of several characters: '**', '//', '<=', '=='
        i = len(prev) - 1
        while i > 0 and prev[i - 1] in _OPERATOR_CHARACTERS:
            i -= 1
        tail = prev[i:]
    return f" after '{tail}'"


_OPERATOR_CHARACTERS = set("*/<>=!")


def _open_if(text: str) -> bool:
    """Whether ``text`` has an ``if`` still waiting for its ``else``."""
    import re

    words = re.findall(r"\b(?:if|else)\b", text)
    return words.count("if") > words.count("else")


def _hint(text: str, pos: int) -> str:
    """What the character at ``pos`` may have meant, for the characters people carry over."""
    ch = text[pos]
    if ch in _INSTEAD:
        return f": gradcli writes {_INSTEAD[ch]}"
    if ch.isdigit():
        return ": numbers are written with the digits 0-9"
    if ch in "'\"":
        return ": a string needs its closing quote on the same line"
    if ch == "." and pos > 0 and (text[pos - 1].isalnum() or text[pos - 1] == "_"):
        if _before(text, pos)[len(" after '") : -1] in _MODULES:
            return ": functions are called by their name alone (sin(x), not np.sin(x))"
        return ": there are no attributes; functions take the place of methods (transpose(x), not x.T)"
    return ""


_MODULES = {"np", "numpy", "math", "torch", "jnp", "jax", "scipy", "sp", "tf", "cmath", "F"}


def _is_syntax_error(exc: BaseException) -> bool:
    """Lark's UnexpectedInput, from lark itself (:func:`lark_parser`) or from ``_lalr``."""
    return any(c.__name__ == "UnexpectedInput" for c in type(exc).__mro__)


def _syntax_error(text: str, exc: Any) -> ExpressionError:
    if type(exc).__name__ == "UnexpectedCharacters":
        pos = exc.pos_in_stream
        ch = text[pos] if pos < len(text) else ""
        return ExpressionError(
            f"unexpected character {ch!r}{_before(text, pos)}{_hint(text, pos)}", text, pos
        )
    # The other error an LALR parser raises: UnexpectedToken (Lark's UnexpectedEOF is Earley's).
    tok = exc.token
    at_end = tok.type == "$END"
    pos = len(text.rstrip()) if at_end else (tok.start_pos or 0)
    if at_end:
        what = "the expression ended too soon"
    elif tok.type == "_SEP":
        what = "the statement ended too soon"
    else:
        what = f"unexpected {str(tok)!r}"
    expected_text = _expected_words(set(exc.expected), text[:pos])
    return ExpressionError(f"{what}: expected {expected_text}{_before(text, pos)}", text, pos)


def parse(text: str, parser: Any = None) -> Program:
    """Parse ``text`` into a Program, or raise ExpressionError pointing at the fault.

    ``parser`` is for tests and tools (e.g. :func:`lark_parser`); the default is built once.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse takes an expression as text (str), got {type(text).__name__}: {text!r:.60}")
    if not text.strip():
        raise ExpressionError("the expression is empty")
    builder = _Builder(text)
    token = _current.set(builder)
    # The instructions are long-lived objects made in bulk, and a long text makes millions: the
    # collector's full collections would rescan them all (a fifth of the parse at 200,000 terms).
    with paused_gc():
        try:
            (parser or _get_parser()).parse(text)
        except Exception as exc:
            if not _is_syntax_error(exc):
                raise
            raise _syntax_error(text, exc) from None
        finally:
            _current.reset(token)
        assert builder.outputs is not None
        return Program(text, builder.ops, builder.outputs, builder.names)
