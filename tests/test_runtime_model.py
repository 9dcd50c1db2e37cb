"""The Python API for the model-only checks: dllint.runtime.check_model(model, batch, loss_fn)."""

import importlib.util
import os

import pytest

from tests.conftest import ROOT

torch = pytest.importorskip("torch")
nn = torch.nn
# Models this small gain nothing from intra-op threads, which on a busy machine spin for seconds.
torch.set_num_threads(1)

from dllint.runtime import check_model  # noqa: E402

# CI checks on the CPU; DLLINT_TEST_DEVICE=cuda runs the same checks on a GPU.
DEVICE = os.environ.get("DLLINT_TEST_DEVICE") or "cpu"


def _toy_models():
    path = os.path.join(ROOT, "tests", "runtime_scripts", "toy_models.py")
    spec = importlib.util.spec_from_file_location("toy_models_for_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ConstantPredictor(nn.Module):
    """Ignores its input: a learned constant plus a layer whose output is multiplied by zero."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))
        self.layer = nn.Linear(4, 1)

    def forward(self, x):
        return self.bias.expand(x.shape[0], 1) + 0.0 * self.layer(x).detach()


class SequenceFirstTagger(nn.Module):
    """Clean: an LSTM over (time, batch, features); samples are independent along dimension 1."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(5, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        hidden, _ = self.lstm(x)
        return self.head(hidden[-1])


def codes(report):
    return sorted(f.code for f in report.findings)


def test_a_clean_classifier_passes_and_is_left_as_it_was():
    model = _toy_models().small_classifier().to(DEVICE)
    model.eval()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    report = check_model(model, torch.randn(8, 12, device=DEVICE), classes=5, steps=60)
    assert report.passed, str(report)
    assert codes(report) == []
    assert len(report.curve) == 60 and report.curve[-1] < 0.05 * report.curve[0]
    assert report.reference_loss == pytest.approx(1.609, abs=1e-3)
    assert not model.training
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


def test_batch_mixing_random_evaluation_and_dead_parameters_are_found():
    report = check_model(_toy_models().batch_mixer().to(DEVICE), torch.randn(8, 6, 4, device=DEVICE), classes=3,
                         steps=20)
    assert {"RT301", "DL303", "RT302"} <= set(codes(report))
    mixing = next(f for f in report.findings if f.code == "RT301")
    assert "other sample(s)" in mixing.message and mixing.name == "batch-mixing"
    assert not report.passed


def test_a_model_that_ignores_its_input_with_a_custom_loss():
    torch.manual_seed(0)
    inputs, targets = torch.randn(8, 4, device=DEVICE), torch.randn(8, 1, device=DEVICE)
    report = check_model(ConstantPredictor().to(DEVICE), (inputs, targets), nn.MSELoss(), steps=40)
    assert "RT304" in codes(report)  # zeroed inputs do as well
    assert "RT303" in codes(report)  # and one batch cannot be overfitted
    dead = next(f for f in report.findings if f.code == "RT302")
    assert "layer.weight" in dead.message


def test_sequence_first_rnn_is_not_batch_mixing():
    torch.manual_seed(0)
    report = check_model(SequenceFirstTagger().to(DEVICE), torch.randn(6, 8, 5, device=DEVICE), classes=3, steps=30)
    assert "RT301" not in codes(report)
    assert any("independent across the batch" in note for note in report.notes)


def test_custom_loss_needs_targets():
    with pytest.raises(ValueError, match="needs the targets"):
        check_model(nn.Linear(3, 1), torch.randn(4, 3), nn.MSELoss())


def test_plot_is_written_only_with_matplotlib(tmp_path):
    picture = tmp_path / "loss.png"
    report = check_model(_toy_models().small_classifier(), torch.randn(8, 12), classes=5, steps=5,
                         plot=str(picture))
    if importlib.util.find_spec("matplotlib") is None:
        assert not picture.exists()
        assert any("needs matplotlib" in note for note in report.notes)
    else:
        assert picture.stat().st_size > 0


def test_the_sigmoid_before_a_loss_is_seen_through_cat_stack_and_slices():
    from dllint.runtime.checks.dl201_dl202_dl203_rt201_loss_inputs import _producer

    logits = torch.randn(4, 3, requires_grad=True)
    probabilities = torch.cat([torch.sigmoid(logits[:, :2]), torch.sigmoid(logits[:, 2:])], dim=1)
    assert _producer(probabilities[:, 1:].grad_fn, 8) == "sigmoid"
    assert _producer(torch.stack([torch.sigmoid(logits), torch.sigmoid(logits * 2)]).grad_fn, 8) == "sigmoid"
    # One part is a logit: the joined tensor is not a sigmoid's output.
    assert _producer(torch.cat([torch.sigmoid(logits), logits * 2], dim=1).grad_fn, 8) is None
