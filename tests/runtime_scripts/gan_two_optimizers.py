"""Clean: a DCGAN-style loop with two optimizers on synthetic images, which runs under plain python.

The generator's output is kept for the generator's own backward() after the discriminator's step (the
usual `fake.detach()` for the discriminator, `fake` for the generator), and both networks have batch
norm whose running statistics that pending graph saved. The runtime must leave them untouched. After
training, samples are drawn in eval mode and the discriminator is scored on the training loader.
"""
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

LATENT = 16


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(LATENT, 32 * 4 * 4), nn.BatchNorm1d(32 * 4 * 4), nn.ReLU())
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1), nn.Tanh())

    def forward(self, noise):
        return self.upsample(self.project(noise).view(-1, 32, 4, 4))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.BatchNorm2d(32), nn.LeakyReLU(0.2))
        self.score = nn.Linear(32 * 4 * 4, 1)

    def forward(self, images):
        return self.score(self.features(images).flatten(1))


def main():
    torch.manual_seed(0)
    images = torch.rand(256, 1, 16, 16) * 2 - 1
    loader = DataLoader(TensorDataset(images), batch_size=32, shuffle=True, drop_last=True)
    generator, discriminator = Generator(), Discriminator()
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    criterion = nn.BCEWithLogitsLoss()
    for epoch in range(4):
        for (real,) in loader:
            ones, zeros = torch.ones(real.size(0), 1), torch.zeros(real.size(0), 1)
            fake = generator(torch.randn(real.size(0), LATENT))

            optimizer_d.zero_grad()
            loss_d = criterion(discriminator(real), ones) + criterion(discriminator(fake.detach()), zeros)
            loss_d.backward()
            optimizer_d.step()

            optimizer_g.zero_grad()
            loss_g = criterion(discriminator(fake), ones)
            loss_g.backward()
            optimizer_g.step()
        print(f"epoch {epoch}: loss_d {loss_d.item():.3f} loss_g {loss_g.item():.3f}")

    generator.eval()
    discriminator.eval()
    with torch.no_grad():
        samples = generator(torch.randn(8, LATENT))
        scores = [torch.sigmoid(discriminator(real)).mean().item() for (real,) in loader]
    print(f"samples {tuple(samples.shape)}, mean real score {sum(scores) / len(scores):.3f}")


if __name__ == "__main__":
    main()
