"""Positions of nodes in files parsed whole, placed from a position pass over the statement around
them (positions.placed_in_statements), equal libcst's pass over the whole module: on every fixture,
and on text where a statement's code occurs twice, tabs, CRLF and a missing final newline."""

import glob
import os

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from dllint.model.builder import build_file_facts
from dllint.positions import placed_in_statements, span_of
from tests.conftest import FIXTURES

REPEATED = """\
import torch


def train(model, loader, optimizer):
    for x, y in loader:
        loss = model(x).sum()
        loss.backward()
        optimizer.step()


def tune(model, loader, optimizer):
    for x, y in loader:
        loss = model(x).sum()
        loss.backward()
        optimizer.step()


class Net(torch.nn.Module):
    def forward(self, x):
        if x.dim() > 2:
            # flatten first
            x = x.flatten(1)
        return torch.softmax(x, dim=1)
"""

TABS_AND_CRLF = "import torch\r\n\r\nclass Net(torch.nn.Module):\r\n\tdef forward(self, x):\r\n\t\tif x:\r\n" \
                "\t\t\treturn torch.relu(x)\r\n\t\treturn x\r\n\r\nx = Net()(torch.ones(2)); y = x + 1\r\n"


def _every_node_placed(source):
    module = cst.parse_module(source)
    full = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    wanted = [node for node in full if not isinstance(node, cst.Module)]
    placed = placed_in_statements(module, source, wanted)
    for node, (before, code_range) in placed.items():
        expected = full[node]
        assert (code_range.start.line + before, code_range.start.column, code_range.end.line + before,
                code_range.end.column) == (expected.start.line, expected.start.column, expected.end.line,
                                           expected.end.column), (type(node).__name__, code_range, expected)
    return module, full, placed


@pytest.mark.parametrize("source", [REPEATED, TABS_AND_CRLF], ids=["repeated", "tabs-crlf"])
def test_placed_positions_equal_the_whole_pass(source):
    module, full, placed = _every_node_placed(source)
    calls = [node for node in full if isinstance(node, cst.Call)]
    assert calls and all(call in placed for call in calls)


def test_a_statement_repeated_elsewhere_is_placed_by_one_around_it():
    # `loss.backward()` occurs twice: its own statement cannot say where it is, the `for` around it can.
    module, full, placed = _every_node_placed(REPEATED)
    backward = [node for node in full if isinstance(node, cst.Call) and
                isinstance(node.func, cst.Attribute) and node.func.attr.value == "backward"]
    assert len(backward) == 2
    assert sorted(full[node].start.line for node in backward) == [7, 14]
    assert all(node in placed for node in backward)


def test_the_last_statement_without_a_final_newline_is_left_to_the_whole_pass():
    source = "import torch\nx = torch.ones(2)"
    module, full, placed = _every_node_placed(source)
    call = next(node for node in full if isinstance(node, cst.Call))
    assert call not in placed  # its code generated alone ends with a newline the file lacks
    facts = build_file_facts("m.py", "m", source, module)
    assert span_of(facts, call) == (2, 5, 2, 18)


# Every eighth fixture: a full position pass per file is what the placing saves, so this is slow.
@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(FIXTURES, "*.py")))[::8], ids=os.path.basename)
def test_every_fixture_node_placed_as_the_whole_pass_places_it(path):
    with open(path, encoding="utf-8", newline="") as handle:
        source = handle.read()
    module, full, placed = _every_node_placed(source)
    statements = [node for node in full if isinstance(node, cst.SimpleStatementLine)]
    assert sum(node in placed for node in statements) >= len(statements) * 0.9


def test_without_libcsts_internal_codegen_state_every_node_gets_the_whole_pass(monkeypatch):
    """The statement pass uses a class internal to libcst: a libcst without it must cost time, not positions."""
    from dllint import positions

    module = cst.parse_module(REPEATED)
    full = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    calls = [node for node in full if isinstance(node, cst.Call)]
    monkeypatch.setattr(positions, "PositionProvidingCodegenState", None)
    facts = build_file_facts("m.py", "m", REPEATED, module)
    for call in calls:
        expected = full[call]
        assert span_of(facts, call) == (expected.start.line, expected.start.column + 1,
                                        expected.end.line, expected.end.column + 1)
    assert id(facts) not in positions._placed
