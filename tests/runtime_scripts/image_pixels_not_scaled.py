"""An image classifier over a dataset of uint8 images. Buggy (the default): the dataset converts the
pixels with .float() only, so the network sees values from 0 to 255 (RT203). `--layout scaled`: the
clean near-miss, divided by 255 and normalized with the dataset's mean and std. `--layout padded-gray`:
scaled, but the grayscale images are padded to the network's three channels with zeros instead of
repeating the gray channel, so two input channels are constant (RT204)."""
import argparse

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset


class PixelDataset(Dataset):
    def __init__(self, images, labels, scaled):
        self.images, self.labels, self.scaled = images, labels, scaled
        pixels = images.float() / 255
        self.mean, self.std = pixels.mean(dim=(0, 2, 3)), pixels.std(dim=(0, 2, 3))

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        image = self.images[index].float()
        if self.scaled:
            image = (image / 255 - self.mean[:, None, None]) / self.std[:, None, None]
        if image.size(0) == 1:
            image = torch.cat([image, torch.zeros_like(image), torch.zeros_like(image)])  # should repeat(3, 1, 1)
        return image, self.labels[index]


parser = argparse.ArgumentParser()
parser.add_argument("--layout", choices=["raw", "scaled", "padded-gray"], default="raw")
layout = parser.parse_args().layout
torch.manual_seed(0)
images = torch.randint(0, 256, (128, 1 if layout == "padded-gray" else 3, 16, 16), dtype=torch.uint8)
loader = DataLoader(PixelDataset(images, torch.randint(0, 4, (128,)), layout != "raw"), batch_size=32,
                    shuffle=True)
model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(8, 4))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(5):
    for batch, labels in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(batch), labels)
        loss.backward()
        optimizer.step()
