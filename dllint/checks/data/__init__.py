"""How data reaches the model: loaders, samplers, shuffling."""
