"""An inference script that never calls optimizer.step(): DL301, the model is used for predictions under
no_grad without model.eval(), so its dropout keeps dropping activations.
"""
import torch
import torch.nn as nn

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 2)).to(device)
samples = torch.randn(40, 10, device=device)
with torch.no_grad():
    for start in range(0, 40, 10):
        predictions = model(samples[start:start + 10]).argmax(dim=1)
        print(predictions.tolist())
