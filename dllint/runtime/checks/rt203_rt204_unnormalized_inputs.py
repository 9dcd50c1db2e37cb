"""RT203 and RT204 while a script trains: image batches that are obviously not normalized.

RT203: images that reach the model as raw 0-255 pixel values. `ToTensor()` scales to [0, 1]; a dataset
that returns `torch.from_numpy(image).float()` (or `pil_to_tensor`) does not, and the first layer then
sees inputs a hundred times larger than its initialisation expects: training is slow or diverges,
silently. Reported for a floating image batch whose values are all whole numbers from 0 to 255, with a
maximum of at least MIN_MAXIMUM.

RT204: a channel that holds one value for every sample and pixel over the checked batches (grayscale
images padded to three channels with zeros, a channel zeroed by a preprocessing step, a constant alpha
channel): the first layer's weights on it learn nothing, and normalizing it divides by a zero std.

Image batches are (N, C, H, W) or (N, H, W, C) with 1, 3 or 4 channels, the first argument of the
training forwards of a model whose parameters an optimizer holds. Reading the numbers waits for the GPU,
so only the first CHECKED_FORWARDS forwards per model are read.
"""

from __future__ import annotations

from typing import Dict, List, Set

from dllint.runtime.observations import Observation, shape_text

CHECKED_FORWARDS = 4
MIN_MAXIMUM = 16.0
IMAGE_CHANNELS = (1, 3, 4)
# RT204 needs this many samples (over the checked batches) before a channel counts as constant.
MIN_CONSTANT_SAMPLES = 16


class ChannelRanges:
    """Per-channel minimum and maximum of one model's checked image batches."""

    def __init__(self, channels: int, shape: tuple, site):
        self.low = [float("inf")] * channels
        self.high = [float("-inf")] * channels
        self.samples = 0
        self.batches = 0
        self.shape = shape
        self.site = site


class UnnormalizedInputCheck:
    ATTRIBUTE = "inputs"
    ORDER = 85
    CODES = ()
    RUNTIME_CODES = {
        "RT203": ("unnormalized-image-input", "warning",
                  "images reach the model as raw 0-255 pixel values instead of scaled and normalized ones"),
        "RT204": ("constant-input-channel", "warning",
                  "a channel of the images reaching the model holds one value for every sample and pixel"),
    }

    def __init__(self, probe):
        self.probe = probe
        self.torch = probe.torch
        self.checked: Dict[int, int] = {}  # id(model) -> forwards checked
        self.reported: Set[int] = set()
        self.ranges: Dict[int, ChannelRanges] = {}
        self.names: Dict[int, str] = {}
        self.found: List[Observation] = []

    def on_root_forward(self, record, module, args, grad_enabled: bool) -> None:
        if not grad_enabled or not args:
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
        channel_dim = 1 if images.shape[1] in IMAGE_CHANNELS else 3
        other_dims = tuple(d for d in range(4) if d != channel_dim)
        with self.torch.no_grad():
            values = images.detach()
            low, high = values.amin(dim=other_dims), values.amax(dim=other_dims)
            whole = (values == values.round()).all()
            lows, highs, whole = low.tolist(), high.tolist(), bool(whole)
        site = self.probe.user_site(depth=4)
        self._note_ranges(record.name, module, images, lows, highs, site)
        low_all, high_all = min(lows), max(highs)
        if id(module) not in self.reported and whole and low_all >= 0.0 and MIN_MAXIMUM <= high_all <= 255.0:
            self.reported.add(id(module))
            self.found.append(Observation(
                "RT203", f"{record.name} was trained on images of shape {shape_text(images.shape)} holding whole "
                         f"numbers from {low_all:.0f} to {high_all:.0f}: raw pixel values; divide by 255 (and "
                         f"normalize with the dataset's mean and std), as ToTensor() and Normalize() do", True,
                [site] if site else [], severity="warning"))

    def _note_ranges(self, name: str, module, images, lows, highs, site) -> None:
        ranges = self.ranges.get(id(module))
        if ranges is None or len(ranges.low) != len(lows):
            ranges = self.ranges[id(module)] = ChannelRanges(len(lows), tuple(images.shape), site)
            self.names[id(module)] = name
        ranges.low = [min(a, b) for a, b in zip(ranges.low, lows)]
        ranges.high = [max(a, b) for a, b in zip(ranges.high, highs)]
        ranges.samples += images.shape[0]
        ranges.batches += 1

    def finish(self) -> List[Observation]:
        found = list(self.found)
        for key, ranges in self.ranges.items():
            constant = [c for c, (low, high) in enumerate(zip(ranges.low, ranges.high)) if low == high]
            if not constant or ranges.samples < MIN_CONSTANT_SAMPLES or len(constant) == len(ranges.low) == 1:
                continue
            values = {ranges.low[c] for c in constant}
            if len(values) == 1:
                listed = f"{_and(str(c) for c in constant)} (always {values.pop():.4g})"
            else:
                listed = _and(f"{c} (always {ranges.low[c]:.4g})" for c in constant)
            found.append(Observation(
                "RT204", f"channel{'s' if len(constant) > 1 else ''} {listed} of the {shape_text(ranges.shape)} "
                         f"images reaching {self.names[key]} held one value for every sample and pixel over "
                         f"{ranges.samples} samples in {ranges.batches} batches: "
                         f"{len(constant)} of {len(ranges.low)} input channels carry no information (grayscale "
                         f"padded with zeros instead of repeated, or a channel lost in preprocessing)", True,
                [ranges.site] if ranges.site else [], severity="warning"))
        return found


def _and(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
