from sympy import diff, symbols

x, y = symbols("x y")
f = x**2 + y**2
at = {x: 2, y: 3}
print(f.subs(at), diff(f, x).subs(at), diff(f, y).subs(at))
