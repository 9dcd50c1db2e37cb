"""How nn.Module classes hold and use their layers."""
