import torch

x = torch.tensor(2.0, requires_grad=True)
y = torch.tensor(3.0, requires_grad=True)
z = x * x + y * y
z.backward()
print(z.item(), x.grad.item(), y.grad.item())
