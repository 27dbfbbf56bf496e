from micrograd.engine import Value

x, y = Value(2.0), Value(3.0)
z = x * x + y * y
z.backward()
print(z.data, x.grad, y.grad)
