from autograd import grad


def f(x, y):
    return x * x + y * y


print(f(2.0, 3.0), *grad(f, (0, 1))(2.0, 3.0))
