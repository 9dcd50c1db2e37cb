"""Optimizer, zero_grad, backward and step: the training loop itself."""
