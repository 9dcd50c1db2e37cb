"""RT203 while a script trains: images that reach the model as raw 0-255 pixel values.

`ToTensor()` scales to [0, 1]; a dataset that returns `torch.from_numpy(image).float()` (or
`pil_to_tensor`) does not, and the first layer then sees inputs a hundred times larger than its
initialisation expects: training is slow or diverges, silently. The first training forwards of each
model whose parameters an optimizer holds are checked: a floating image batch (N, C, H, W or N, H, W, C
with 1, 3 or 4 channels) whose values are all whole numbers from 0 to 255, with a maximum of at least
MIN_MAXIMUM. Reading the numbers waits for the GPU, so only CHECKED_FORWARDS forwards per model are read.
"""

from __future__ import annotations

from typing import List, Set

from dllint.runtime.observations import Observation

CHECKED_FORWARDS = 2
MIN_MAXIMUM = 16.0
IMAGE_CHANNELS = (1, 3, 4)


class UnnormalizedInputCheck:
    ATTRIBUTE = "inputs"
    ORDER = 85
    CODES = ()
    RUNTIME_CODES = {
        "RT203": ("unnormalized-image-input", "warning",
                  "images reach the model as raw 0-255 pixel values instead of scaled and normalized ones"),
    }

    def __init__(self, probe):
        self.probe = probe
        self.torch = probe.torch
        self.checked = {}  # id(model) -> forwards checked
        self.reported: Set[int] = set()
        self.found: List[Observation] = []

    def on_root_forward(self, record, module, args, grad_enabled: bool) -> None:
        if not grad_enabled or not args or id(module) in self.reported:
            return
        count = self.checked.get(id(module), 0)
        if count >= CHECKED_FORWARDS or not isinstance(args[0], self.torch.Tensor):
            return
        images = args[0]
        if not (images.is_floating_point() and images.dim() == 4 and images.numel()
                and (images.shape[1] in IMAGE_CHANNELS or images.shape[3] in IMAGE_CHANNELS)):
            return
        if not {id(p) for p in module.parameters()} & self.probe.optimizer_param_ids():
            return  # not (yet) trained: a frozen feature extractor may take any input
        self.checked[id(module)] = count + 1
        with self.torch.no_grad():
            values = images.detach()
            low, high = float(values.min()), float(values.max())
            whole = bool((values == values.round()).all())
        if whole and low >= 0.0 and MIN_MAXIMUM <= high <= 255.0:
            self.reported.add(id(module))
            site = self.probe.user_site(depth=4)
            self.found.append(Observation(
                "RT203", f"{record.name} was trained on images of shape {tuple(images.shape)} holding whole numbers "
                         f"from {low:.0f} to {high:.0f}: raw pixel values; divide by 255 (and normalize with the "
                         f"dataset's mean and std), as ToTensor() and Normalize() do", True,
                [site] if site else [], severity="warning"))

    def finish(self) -> List[Observation]:
        return list(self.found)
