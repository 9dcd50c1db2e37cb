"""Whether gradients reach the parameters."""
