"""What reaches the loss: logits, probabilities, log-probabilities."""
