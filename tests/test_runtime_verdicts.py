"""Joining observations to static findings (no torch, no child process): verdicts, matching by statement
and by function, runtime-only findings, exit status, and the line coverage that decides NOT REACHED."""

import os
import sys
import textwrap

import pytest

from dllint.findings import Finding
from dllint.runtime.process.coverage import LineCoverage
from dllint.runtime.observations import Observation, RunOutcome
from dllint.runtime.report import format_text
from dllint.runtime.process.session import ConfirmResult, findings_in_traceback
from dllint.runtime.verdicts import Judge, Judged, SourceIndex, coverage_targets, exit_status

TRAIN = textwrap.dedent("""\
    import torch

    def train(model, optimizer, loader, criterion):
        total = 0.0
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(
                torch.softmax(model(x), dim=1),
                y)
            loss.backward()
            optimizer.step()
            total += loss
        return total

    def evaluate(model, loader):
        for x, y in loader:
            model(x)
    """)


def finding(path, line, code, column=1):
    return Finding(str(path), line, column, line, column + 5, code, code.lower(), "error", f"{code} message")


def judge(tmp_path, findings, observations, reached=None, status="stopped", steps=20):
    path = tmp_path / "train.py"
    path.write_text(TRAIN)
    real = os.path.realpath(path)
    outcome = RunOutcome(status, steps=steps, reached={real: reached or []}, loaded_files=[real])
    return Judge(findings, observations, outcome, SourceIndex(), str(path)).run()


def site(tmp_path, line):
    return (os.path.realpath(tmp_path / "train.py"), line, 1)


def test_a_site_anywhere_on_a_multi_line_statement_confirms_the_finding(tmp_path):
    softmax = finding(tmp_path / "train.py", 8, "DL201", column=13)
    observation = Observation("DL201", "rows sum to 1", True, [site(tmp_path, 7)])
    judged, runtime = judge(tmp_path, [softmax], [observation], reached=[7])
    assert [(j.verdict, j.evidence) for j in judged] == [("CONFIRMED", "rows sum to 1")]
    assert runtime == []


def test_function_scoped_evidence_confirms_the_lone_finding_of_its_function(tmp_path):
    kept = finding(tmp_path / "train.py", 12, "DL104")
    observation = Observation("DL104", "graphs alive", True, [site(tmp_path, 7)], scope="function")
    judged, _ = judge(tmp_path, [kept], [observation], reached=[12])
    assert judged[0].verdict == "CONFIRMED"
    # Statement-scoped evidence elsewhere in the function confirms nothing.
    statement_only = Observation("DL104", "graphs alive", True, [site(tmp_path, 7)])
    judged, runtime = judge(tmp_path, [kept], [statement_only], reached=[12])
    assert judged[0].verdict == "NOT REPRODUCED"
    assert [r.finding.line for r in runtime] == [7]


def test_unreached_lines_and_unchecked_rules(tmp_path):
    missing_eval = finding(tmp_path / "train.py", 17, "DL301")
    typo = finding(tmp_path / "train.py", 6, "DL403")
    judged, _ = judge(tmp_path, [missing_eval, typo], [], reached=[6])
    verdicts = {j.finding.code: j for j in judged}
    assert verdicts["DL301"].verdict == "NOT REACHED"
    assert "stopped after 20 optimizer steps" in verdicts["DL301"].evidence
    assert verdicts["DL403"].verdict == "NOT CHECKED" and "the line ran" in verdicts["DL403"].evidence


def test_a_run_that_could_not_start_leaves_every_finding_unchecked(tmp_path):
    missing_eval = finding(tmp_path / "train.py", 17, "DL301")
    judged, _ = judge(tmp_path, [missing_eval], [], status="error", steps=0)
    assert [(j.verdict, j.evidence) for j in judged] == [("NOT CHECKED", "the script could not be run")]


def test_a_device_mismatch_crash_is_explained_by_an_unregistered_module_list(tmp_path):
    # On a GPU, submodules kept in a plain list stay on the CPU and the first forward crashes far from
    # the list's line; a DL501 finding anywhere in the program is the likely cause.
    path = str(tmp_path / "train.py")
    crash = (f'File "{path}", line 17, in evaluate\n'
             "RuntimeError: Expected all tensors to be on the same device, but found at least two devices, "
             "cuda:0 and cpu!")
    unregistered = Judged(finding(path, 4, "DL501"), "CONFIRMED", "")
    on_the_line = Judged(finding(path, 17, "DL301"), "NOT REACHED", "")
    elsewhere = Judged(finding(path, 12, "DL104"), "NOT REACHED", "")
    result = ConfirmResult("train.py", RunOutcome("crashed", traceback=crash),
                           findings=[unregistered, on_the_line, elsewhere])
    assert [f.code for f in findings_in_traceback(result)] == ["DL501", "DL301"]
    explained = format_text(result).split("may explain the crash")[1]
    assert f"{path}:4:1: DL501" in explained and "DL104" not in explained
    other_error = ConfirmResult("train.py", RunOutcome("crashed", traceback=crash.split("RuntimeError")[0]),
                                findings=[unregistered, on_the_line, elsewhere])
    assert [f.code for f in findings_in_traceback(other_error)] == ["DL301"]


def test_below_threshold_evidence_never_confirms(tmp_path):
    step = finding(tmp_path / "train.py", 11, "DL101")
    weak = Observation("DL101", "below the confirmation threshold: 1 of 19 steps", False, [site(tmp_path, 11)],
                       severity="info")
    general = Observation("DL101", "gradients were reset between all 19 steps", summary=True)
    judged, runtime = judge(tmp_path, [step], [weak, general], reached=[11])
    assert judged[0].verdict == "NOT REPRODUCED" and "below the confirmation threshold" in judged[0].evidence
    assert runtime == []
    judged, _ = judge(tmp_path, [step], [general], reached=[11])
    assert judged[0].evidence == "gradients were reset between all 19 steps"


def test_unmatched_observations_become_runtime_findings_and_set_the_exit_status(tmp_path):
    broadcast = Observation("RT203", "raw pixels", True, [site(tmp_path, 7)], severity="warning")
    info = Observation("DL301", "teacher model", False, [site(tmp_path, 17)], severity="info")
    judged, runtime = judge(tmp_path, [], [broadcast, info])
    assert [(r.finding.code, r.finding.name, r.finding.severity, r.verdict) for r in runtime] == [
        ("RT203", "unnormalized-image-input", "warning", "FOUND"), ("DL301", "missing-eval", "info", "FOUND")]
    outcome = RunOutcome("finished")
    assert exit_status(outcome, judged, runtime) == 1
    assert exit_status(outcome, judged, runtime[1:]) == 0  # info alone
    assert exit_status(RunOutcome("crashed"), judged, runtime[1:]) == 2


def test_findings_in_files_the_program_never_loaded_are_left_out(tmp_path):
    other = tmp_path / "other_script.py"
    other.write_text("import torch\n")
    judged, _ = judge(tmp_path, [finding(other, 1, "DL101"), finding(tmp_path / "train.py", 11, "DL101")], [],
                      reached=[11])
    assert [j.finding.path for j in judged] == [str(tmp_path / "train.py")]


def test_coverage_targets_cover_the_whole_statement(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(TRAIN)
    targets = coverage_targets([finding(path, 8, "DL201"), finding(path, 5, "DL101")], SourceIndex())
    # The for header alone (line 5), and all three lines of the call statement.
    assert targets == {os.path.realpath(path): [5, 7, 8, 9]}


def test_line_coverage_records_target_lines_and_stops_when_all_ran(tmp_path):
    module = tmp_path / "covered.py"
    module.write_text("def work(flag):\n    if flag:\n        return 1\n    return 2\n")
    namespace = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    coverage = LineCoverage({str(module): [3, 4]})
    previous = sys.gettrace()
    coverage.start()
    try:
        namespace["work"](True)
        assert coverage.reached_lines() == {os.path.realpath(module): [3]}
        namespace["work"](False)
    finally:
        coverage.stop()
        sys.settrace(previous)
    assert coverage.reached_lines() == {os.path.realpath(module): [3, 4]}
    assert not coverage._active  # every target ran: tracing switched itself off


@pytest.mark.skipif(not hasattr(sys, "monitoring"), reason="sys.monitoring is Python 3.12+")
def test_line_events_are_switched_on_only_in_code_that_holds_a_target(tmp_path):
    module = tmp_path / "covered.py"
    module.write_text("def helper(x):\n    return x + 1\n\ndef work(x):\n    y = helper(x)\n    if x < 0:\n"
                      "        return 0\n    return y\n")
    namespace = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    coverage = LineCoverage({str(module): [7, 8]})
    coverage.start()
    try:
        assert namespace["work"](1) == 2
        assert [code.co_name for code in coverage._line_watched] == ["work"]  # not helper
        assert coverage.reached_lines() == {os.path.realpath(module): [8]}
        assert namespace["work"](-1) == 0
        assert coverage._tool is None  # every target ran: the tool was released
    finally:
        coverage.stop()
    assert coverage.reached_lines() == {os.path.realpath(module): [7, 8]}


def test_two_findings_of_one_code_in_a_function_each_take_the_evidence_nearest_their_line(tmp_path):
    # A function-wide observation (a kept loss graph) at the running total's line, two DL104 findings.
    total = finding(tmp_path / "train.py", 12, "DL104")
    other = finding(tmp_path / "train.py", 4, "DL104")
    kept = Observation("DL104", "graphs kept alive", True, [site(tmp_path, 11)], scope="function")
    judged, runtime = judge(tmp_path, [other, total], [kept], reached=[4, 11, 12])
    assert {j.finding.line: j.verdict for j in judged} == {4: "NOT REPRODUCED", 12: "CONFIRMED"}
    assert runtime == []


def test_observations_of_one_code_on_one_line_are_one_runtime_finding(tmp_path):
    first = Observation("DL209", "shapes (32, 1) and (32,)", True, [site(tmp_path, 7)], severity="warning")
    second = Observation("DL209", "shapes (16, 1) and (16,)", True, [site(tmp_path, 7)], severity="error")
    _, runtime = judge(tmp_path, [], [first, second, first], reached=[7])
    assert [(j.finding.line, j.finding.severity, j.evidence) for j in runtime] == [
        (7, "error", "shapes (32, 1) and (32,); shapes (16, 1) and (16,)")]


DEEP_CHAIN_LEVELS = 14


def test_an_observation_deep_in_a_call_chain_confirms_a_finding_on_its_outermost_call(tmp_path):
    # fit() -> run_epoch() -> level_1() ... -> level_14() -> the hook (outside the user's folder): the finding
    # sits on the outermost call, fourteen user frames above the event.
    from dllint.runtime.hooks import SourceFilter

    user = tmp_path / "project"
    user.mkdir()
    lines = ["import sys", "", "def level_%d(hook):" % DEEP_CHAIN_LEVELS, "    return hook(sys._getframe())"]
    for level in range(DEEP_CHAIN_LEVELS - 1, 0, -1):
        lines += ["", f"def level_{level}(hook):", f"    return level_{level + 1}(hook)"]
    lines += ["", "def run_epoch(hook):", "    return level_1(hook)", "", "def fit(hook):",
              "    result = run_epoch(hook)  # the finding's line", "    return result"]
    path = user / "deep.py"
    path.write_text("\n".join(lines) + "\n")
    namespace = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    sources = SourceFilter(str(user), [])
    sites = namespace["fit"](lambda frame: sources.user_sites(frame))
    assert len(sites) == DEEP_CHAIN_LEVELS + 2
    outer_line = lines.index("    result = run_epoch(hook)  # the finding's line") + 1
    assert sites[-1] == (os.path.realpath(path), outer_line, 14)
    # The same chain again comes from the cache, unchanged.
    assert namespace["fit"](lambda frame: sources.user_sites(frame)) == sites

    call = Finding(str(path), outer_line, 5, outer_line, 30, "DL301", "missing-eval", "error", "DL301 message")
    observation = Observation("DL301", "dropout active in evaluation", True, sites)
    real = os.path.realpath(path)
    outcome = RunOutcome("finished", steps=3, reached={real: [outer_line]}, loaded_files=[real])
    judged, runtime = Judge([call], [observation], outcome, SourceIndex(), str(path)).run()
    assert [(j.verdict, j.evidence) for j in judged] == [("CONFIRMED", "dropout active in evaluation")]
    assert runtime == []


def test_the_orders_a_view_can_be_compared_with_reorder_the_axes_and_merge_them_in_order():
    from dllint.runtime.checks.dl508_view_as_permute import _reorderings

    assert _reorderings((16, 5, 6), (5, 16, 6)) == [(1, 0, 2)]  # time-major by view
    # Feature maps to tokens: the channel moved last, height kept before width, is tried first.
    assert _reorderings((8, 3, 4, 4), (8, 16, 3)) == [(0, 2, 3, 1), (0, 3, 2, 1)]
    assert _reorderings((8, 3, 4, 5), (8, 3, 20)) == []  # a merge in order reorders nothing
    assert _reorderings((8, 12), (8, 3, 4)) == []  # a split
    assert _reorderings((2, 1, 3), (3, 1, 2)) == [(2, 0, 1)]  # axes of size 1 are left aside
