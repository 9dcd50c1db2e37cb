"""`dllint confirm` as users run it, on the scripts in tests/runtime_scripts (synthetic data).

Every run is a real child process running a real script. The runs go in the background (a torch import
dominates each run): on one thread from the start of a session that selected any of these tests, beside
the tests that come before them (mostly one process at a time), then on more threads once the first of
them asks; each test waits for its own.

The scripts pick CUDA when it is available, like most training scripts. CI runs them on the CPU; on a
machine with a GPU, `DLLINT_TEST_DEVICE=cuda pytest tests/test_runtime.py` runs every script and model
check with `--device cuda` and expects the same verdicts.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import threading
from collections import deque
from concurrent.futures import Future

import pytest

from tests.conftest import ROOT

pytest.importorskip("torch")

SCRIPTS = os.path.join(ROOT, "tests", "runtime_scripts")
# Budget per run; the runs themselves take a few seconds each.
RUN_TIMEOUT = 60
WORKER_PIDS = os.path.join(tempfile.gettempdir(), f"dllint-test-workers-{os.getpid()}.txt")
NETWORK_ROUTES = os.path.join(tempfile.gettempdir(), f"dllint-test-network-{os.getpid()}.json")

# In the order the tests below ask for them, so that a test waits for little more than its own runs.
RUNS = {
    "softmax_no_zero_grad": ["no_zero_grad_softmax.py"],
    "clear_before_step": ["clear_before_step_with_workers.py", "--", "--epochs", "1", "--workers", "2"],
    "clear_before_step_long": ["clear_before_step_with_workers.py", "--steps", "40", "--", "--epochs", "8",
                               "--workers", "0"],
    "package_module": ["-m", "recsys.train", "--", "--epochs", "3"],
    "eval_in_training_loop": ["eval_inside_training_loop.py"],
    "sigmoid_clamp_broadcast": ["sigmoid_bce_clamp_broadcast.py"],
    "softmax_over_batch": ["softmax_over_batch.py"],
    "softmax_contrastive": ["softmax_over_batch.py", "--", "--layout", "contrastive"],
    "regression_column": ["regression_column_target.py"],
    "regression_squeezed": ["regression_column_target.py", "--", "--layout", "squeezed"],
    "graph_cut": ["graph_cut_in_forward.py"],
    "graph_cut_torch": ["graph_cut_in_forward.py", "--", "--layout", "torch"],
    "exploding_loss": ["exploding_loss.py"],
    "batch_mixing": ["batch_mixing_view.py"],
    "one_feature_view": ["batch_mixing_view.py", "--", "--layout", "one-feature"],
    "evaluation_modes": ["evaluation_mode_bugs.py", "--steps", "3"],
    "inference_only": ["inference_without_eval.py"],
    "module_structure": ["module_structure_bugs.py"],
    "clean_training_loops": ["clean_training_loops.py"],
    "clean_models": ["clean_models.py"],
    "gpu_script_on_cpu": ["gpu_ddp_compile.py", "--device", "cpu"],
    "cuda_asked_for_script": ["--device", "cuda", "no_zero_grad_softmax.py"],
    "cuda_asked_for_model": ["--device", "cuda", "--model", "toy_models:small_classifier", "--input-shape", "4,12"],
    "model_clean": ["--model", "toy_models:small_classifier", "--input-shape", "8,12", "--classes", "5"],
    "detached_loss_crash": ["detached_loss_crash.py", "--format", "text"],
    "shape_error_crash": ["shape_error_crash.py"],
    "download": ["dataset_download.py", "--format", "text"],
    "network_routes": ["network_routes.py", "--", NETWORK_ROUTES],
    "infinite_loop": ["infinite_loop.py", "--timeout", "5"],
    "exit_status": ["exit_with_status.py"],
    "rebuilt_optimizer_flat": ["optimizer_rebuilt_each_iteration.py"],
    "rebuilt_optimizer_in_function": ["optimizer_rebuilt_each_iteration.py", "--", "--layout", "function"],
    "gan": ["gan_two_optimizers.py"],
    "rnn_tbptt": ["rnn_truncated_bptt.py"],
    "ddp_gloo": ["ddp_gloo_cpu.py"],
    "torchscript": ["torchscript_parts.py"],
    "epoch_running_total": ["running_total_reset_each_epoch.py"],
    "head_replaced": ["head_replaced_after_optimizer.py"],
    "head_frozen": ["head_replaced_after_optimizer.py", "--", "--layout", "frozen"],
    "head_only_optimized": ["head_replaced_after_optimizer.py", "--", "--layout", "head-only"],
    "pixels_raw": ["image_pixels_not_scaled.py"],
    "pixels_scaled": ["image_pixels_not_scaled.py", "--", "--layout", "scaled"],
    "pixels_padded_gray": ["image_pixels_not_scaled.py", "--", "--layout", "padded-gray"],
    "lr_too_high": ["learning_rate_too_high.py"],
    "lr_fine": ["learning_rate_too_high.py", "--", "--lr", "0.02"],
    "step_no_backward": ["step_without_backward.py"],
    "backward_no_step": ["step_without_backward.py", "--", "--layout", "no-step"],
    "lbfgs_closure": ["step_without_backward.py", "--", "--layout", "lbfgs"],
    "loss_term_number": ["loss_term_added_as_number.py"],
    "loss_term_tensor": ["loss_term_added_as_number.py", "--", "--layout", "tensor"],
    "shared_layers": ["shared_layers.py"],
    "dead_relu": ["dead_relu_units.py"],
    "live_relu": ["dead_relu_units.py", "--", "--bias", "0"],
    "model_buggy": ["--model", "toy_models:batch_mixer", "--input-shape", "8,6,4", "--classes", "3"],
    # The timeout leaves room for torch's import and two workers' start on a loaded machine: the script
    # writes their ids only once they run.
    "hung_with_workers": ["stuck_with_workers.py", "--timeout", "25", "--", WORKER_PIDS],
}
TEST_DEVICE = os.environ.get("DLLINT_TEST_DEVICE", "")
if TEST_DEVICE == "cuda":
    # The GPU script itself, this time on its GPU (one process, nccl, compile bypassed).
    RUNS["gpu_script_on_gpu"] = ["gpu_ddp_compile.py", "--device", "cuda"]
    # Asking for the GPU is a failure only on a machine without one.
    del RUNS["cuda_asked_for_script"], RUNS["cuda_asked_for_model"]
# Runs whose parent kills the hung child one second after the timeout instead of ten.
SHORT_KILL_MARGIN = {"hung_with_workers"}


class Run:
    def __init__(self, args, completed, seconds):
        self.args = args
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.seconds = seconds
        self.data = json.loads(self.stdout) if "text" not in args and self.stdout.startswith("{") else None

    def verdicts(self):
        return {(f["code"], f["line"]): f["verdict"] for f in self.data["findings"]}

    def confirmed(self):
        return [f for f in self.data["findings"] if f["verdict"] == "CONFIRMED"]

    def runtime(self, code):
        return [f for f in self.data["runtime_findings"] if f["code"] == code]

    def lone_runtime_finding(self, code):
        """The one runtime finding `code` of a run that reports it (exit status 1)."""
        assert self.returncode == 1, self
        (finding,) = self.runtime(code)
        return finding

    def assert_quiet(self):
        """A clean twin: exit status 0 and no runtime finding."""
        assert self.returncode == 0 and not self.data["runtime_findings"], self

    def __repr__(self):
        return f"<confirm {' '.join(self.args)}: exit {self.returncode}\n{self.stdout}\n{self.stderr}>"


def _env():
    """This checkout first on the path, and whatever the machine already had (libcst may live there)."""
    paths = [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def _confirm(name, args, env):
    env = dict(env)
    # One thread per child: the runs go in parallel, and oversubscribed intra-op threads spin for seconds.
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    started = time.monotonic()
    output = [] if "--format" in args else ["--format", "json"]
    if TEST_DEVICE and "--device" not in args:
        output += ["--device", TEST_DEVICE]
    command = [sys.executable, "-m", "dllint"]
    if name in SHORT_KILL_MARGIN:
        command = [sys.executable, "-c", "import sys; from dllint.runtime.process import session; "
                   "session.KILL_MARGIN_SECONDS = 1.0; from dllint.cli import main; sys.argv[0] = 'dllint'; main()"]
    completed = subprocess.run([*command, "confirm", *output, *args],
                               cwd=SCRIPTS, capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT)
    return Run(args, completed, time.monotonic() - started)


class BackgroundRuns:
    """The runs of RUNS on background threads, the mostly waiting ones first; `result(name)` waits for one."""

    def __init__(self):
        self.futures = {name: Future() for name in RUNS}
        self.pending = deque(sorted(RUNS, key=lambda name: name not in ("hung_with_workers", "infinite_loop")))
        self.lock = threading.Lock()
        self.threads = []
        self.env = None

    def start(self, threads):
        with self.lock:
            if self.env is None:
                self.env = _env()  # as the session began: tests running beside the runs may change os.environ
            while len(self.threads) < threads:
                thread = threading.Thread(target=self._work, name="dllint-confirm-runs")
                thread.start()
                self.threads.append(thread)

    def _work(self):
        while True:
            with self.lock:
                if not self.pending:
                    return
                name = self.pending.popleft()
            future = self.futures[name]
            try:
                future.set_result(_confirm(name, RUNS[name], self.env))
            except BaseException as error:  # the test that reads this run reports it
                future.set_exception(error)

    def result(self, name):
        return self.futures[name].result()

    def stop(self):
        """Drop the runs not started (a session that ends early) and wait for the others."""
        with self.lock:
            for name in self.pending:
                self.futures[name].cancel()
            self.pending.clear()
        for thread in self.threads:
            thread.join()


BACKGROUND_RUNS = BackgroundRuns()


@pytest.fixture(scope="session")
def confirm_runs():
    # One more thread than cores: the hung run mostly waits.
    BACKGROUND_RUNS.start(threads=(os.cpu_count() or 2) + 1)
    yield BACKGROUND_RUNS.result
    BACKGROUND_RUNS.stop()
    if os.environ.get("DLLINT_TEST_RECORD"):
        _record(os.environ["DLLINT_TEST_RECORD"], {name: BACKGROUND_RUNS.result(name) for name in RUNS})


def _record(path, runs):
    """Verdicts, status and time of every run, for the closing notes of device checks."""
    summary = {name: {"exit": run.returncode, "seconds": round(run.seconds, 1),
                      "run": {key: run.data["run"].get(key) for key in ("status", "steps", "device")} if run.data else None,
                      "verdicts": sorted(f"{code}:{line} {verdict}" for (code, line), verdict in run.verdicts().items())
                      if run.data else None,
                      "runtime": sorted(f"{f['code']}:{f['line']} {f['severity']}" for f in run.data["runtime_findings"])
                      if run.data else None}
               for name, run in sorted(runs.items())}
    with open(path, "w") as handle:
        json.dump(summary, handle, indent=1)


# -- training loops ---------------------------------------------------------------------------------

def test_missing_zero_grad_and_softmax_into_cross_entropy_are_confirmed(confirm_runs):
    run = confirm_runs("softmax_no_zero_grad")
    assert run.returncode == 1, run
    assert run.verdicts() == {("DL201", 16): "CONFIRMED", ("DL101", 18): "CONFIRMED"}
    by_code = {f["code"]: f for f in run.data["findings"]}
    assert "still held the previous step's contribution" in by_code["DL101"]["evidence"]
    assert "rows" in by_code["DL201"]["evidence"] and "softmax" in by_code["DL201"]["evidence"]
    # The static finding objects come back whole, plus verdict and evidence.
    assert set(by_code["DL101"]) >= {"path", "line", "column", "code", "name", "severity", "message", "verdict",
                                      "evidence"}
    assert run.data["run"]["status"] == "stopped" and run.data["run"]["steps"] == 20
    assert "dllint: step 20/20" in run.stderr and "loss" in run.stderr


def test_clear_before_step_with_argparse_dataloader_workers_and_sys_exit(confirm_runs):
    run = confirm_runs("clear_before_step")
    assert run.returncode == 1, run
    assert run.verdicts() == {("DL203", 46): "CONFIRMED", ("DL102", 48): "CONFIRMED"}
    # --epochs 1 reached the script's argparse: 96 samples / 16 = 6 steps, then sys.exit(0).
    assert run.data["run"]["status"] == "finished" and run.data["run"]["steps"] == 6


def test_a_long_run_is_judged_on_the_steps_it_watched(confirm_runs):
    # After six steps only one step in four is watched; the evidence must not be diluted by the others.
    run = confirm_runs("clear_before_step_long")
    assert run.data["run"]["steps"] == 40
    assert run.verdicts() == {("DL203", 46): "CONFIRMED", ("DL102", 48): "CONFIRMED"}
    cleared = next(f for f in run.data["findings"] if f["code"] == "DL102")
    assert "at 15 of 15 steps" in cleared["evidence"], cleared["evidence"]


def test_grad_scaler_and_clipping_do_not_hide_accumulation_in_a_package_run_with_dash_m(confirm_runs):
    run = confirm_runs("package_module")
    assert run.returncode == 1, run
    assert run.verdicts() == {("DL101", 13): "CONFIRMED"}
    assert run.data["findings"][0]["path"] == os.path.join("recsys", "engine.py")
    assert run.data["run"]["steps"] == 12


def test_eval_inside_training_loop_reused_norm_layer_and_kept_loss_graphs(confirm_runs):
    run = confirm_runs("eval_in_training_loop")
    assert run.returncode == 1, run
    # The static DL104 (`running_loss += loss`) is confirmed by the graphs the runtime sees kept alive.
    assert run.verdicts() == {("DL504", 26): "CONFIRMED", ("DL302", 43): "CONFIRMED", ("DL104", 41): "CONFIRMED"}
    kept = next(f for f in run.data["findings"] if f["code"] == "DL104")
    assert "still alive" in kept["evidence"] and kept["severity"] == "warning"


# -- losses and gradients ---------------------------------------------------------------------------

def test_sigmoid_into_bce_with_logits_clamp_and_broadcasting(confirm_runs):
    run = confirm_runs("sigmoid_clamp_broadcast")
    assert run.returncode == 1, run
    assert run.verdicts() == {("DL401", 35): "CONFIRMED", ("DL202", 36): "CONFIRMED"}
    # No static DL209 there (the clamped price's shape is not known statically): a runtime finding.
    broadcast = run.runtime("DL209")
    assert len(broadcast) == 1 and broadcast[0]["line"] == 37 and broadcast[0]["severity"] == "error"
    assert "(32, 1)" in broadcast[0]["message"] and "(32, 32)" in broadcast[0]["message"]


def test_a_softmax_over_the_batch_is_confirmed_at_the_loss_and_the_prediction_and_a_column_softmax_is_not(
        confirm_runs):
    run = confirm_runs("softmax_over_batch")
    assert run.returncode == 1, run
    assert run.verdicts() == {("DL208", 45): "CONFIRMED", ("DL208", 56): "CONFIRMED"}
    by_line = {f["line"]: f["evidence"] for f in run.confirmed()}
    assert "log_softmax over dim 0 of a (16, 5) tensor" in by_line[45] and "8 of 8 calls" in by_line[45]
    assert "each of the 5 class columns sums to 1 over the 16 samples" in by_line[45]
    # The evaluation's prediction, under no_grad: judged from the values.
    assert "argmax(dim=1) read a (128, 5) tensor that holds a softmax over dim 0" in by_line[56]
    # The batch-independence replay sees the same softmax: its evidence is not a second finding.
    assert run.data["runtime_findings"] == [], run
    confirm_runs("softmax_contrastive").assert_quiet()


def test_a_column_prediction_against_a_vector_target_is_confirmed_with_both_loss_values(confirm_runs):
    column = confirm_runs("regression_column")
    assert column.returncode == 1, column
    assert column.verdicts() == {("DL209", 33): "CONFIRMED"}
    evidence = column.confirmed()[0]["evidence"]
    assert "(32, 1) with a target of shape (32,) in 20 calls" in evidence and "(32, 32)" in evidence
    assert "the same loss on matched shapes" in evidence
    confirm_runs("regression_squeezed").assert_quiet()


def test_graph_cuts_starve_the_encoder_and_a_data_penalty_adds_no_gradient(confirm_runs):
    cut = confirm_runs("graph_cut")
    assert cut.returncode == 1, cut
    assert cut.verdicts() == {("DL404", 31): "CONFIRMED", ("DL404", 39): "CONFIRMED"}
    by_line = {f["line"]: f["evidence"] for f in cut.confirmed()}
    assert "(.detach() at line 29)" in by_line[31] and "torch.from_numpy()" in by_line[31]
    assert "SensorRegressor.encoder.0.weight" in by_line[31] and "received no gradient in 20" in by_line[31]
    assert "read .data of 4 parameter tensors" in by_line[39] and "term with no autograd history" in by_line[39]
    # The encoder that gets no gradient is the cut's evidence, not a DL402 finding of its own.
    assert cut.data["runtime_findings"] == [], cut
    torch_ops = confirm_runs("graph_cut_torch")
    torch_ops.assert_quiet()
    assert {f["verdict"] for f in torch_ops.data["findings"]} == {"NOT REACHED"}


def test_nan_loss_is_traced_to_its_module_and_a_bad_initial_loss_is_reported(confirm_runs):
    run = confirm_runs("exploding_loss")
    assert run.returncode == 1, run
    nonfinite = run.runtime("RT101")
    assert len(nonfinite) == 1 and "LogScale" in nonfinite[0]["message"] and nonfinite[0]["line"] == 29
    initial = run.runtime("RT201")
    assert len(initial) == 1 and "-log(1/10) = 2.3" in initial[0]["message"]


def test_a_view_that_mixes_the_batch_is_confirmed_as_view_as_permute_with_the_replay_as_evidence(confirm_runs):
    run = confirm_runs("batch_mixing")
    assert run.returncode == 1, run
    assert run.verdicts() == {("DL508", 32): "CONFIRMED", ("DL508", 44): "NOT REACHED"}
    evidence = run.confirmed()[0]["evidence"]
    assert "turned a (16, 5, 6) tensor into (5, 16, 6)" in evidence and "differ from permute(1, 0, 2)" in evidence
    # The batch-independence replay saw the same view mix the batch: one finding, not a second one.
    assert "output 0 depends on" in evidence and not run.runtime("RT301")
    assert run.data["run"]["status"] == "finished" and not run.data["run"]["notes"]
    # The same static finding on a view that only moves an axis of size 1: nothing is scrambled.
    one_feature = confirm_runs("one_feature_view")
    one_feature.assert_quiet()
    assert one_feature.verdicts() == {("DL508", 32): "NOT REACHED", ("DL508", 44): "NOT REPRODUCED"}
    kept = next(f for f in one_feature.data["findings"] if f["line"] == 44)["evidence"]
    assert "(16, 1, 5) tensor into (16, 5, 1) keeps the order of its sizes other than 1" in kept


# -- train/eval mode --------------------------------------------------------------------------------

def test_evaluation_after_the_step_budget_still_runs_and_confirms_missing_eval(confirm_runs):
    run = confirm_runs("evaluation_modes")
    assert run.returncode == 1, run
    # 3 steps stop the first epoch early (4 batches); its evaluation still runs.
    assert run.data["run"]["steps"] == 3
    # The static DL303 (F.dropout without training=) is confirmed by outputs that differ in eval mode.
    assert run.verdicts() == {("DL301", 40): "CONFIRMED", ("DL303", 25): "CONFIRMED"}
    assert not run.runtime("DL303")


def test_a_script_that_never_steps_confirms_missing_eval_at_inference(confirm_runs):
    run = confirm_runs("inference_only")
    assert run.returncode == 1, run
    assert run.data["run"]["steps"] == 0 and run.data["run"]["status"] == "finished"
    assert run.verdicts() == {("DL301", 13): "CONFIRMED"}


# -- module structure -------------------------------------------------------------------------------

def test_unregistered_unused_and_repeated_modules(confirm_runs):
    run = confirm_runs("module_structure")
    assert run.returncode == 1, run
    if run.data["run"]["device"] == "cuda":
        # model.to("cuda") left the blocks of the plain list on the CPU: the first forward crashes, and the
        # crash is put down to DL501.
        assert run.data["run"]["status"] == "crashed" and "same device" in run.data["run"]["traceback"]
        assert run.verdicts()[("DL501", 26)] == "CONFIRMED"
        text = _dllint("confirm", "--device", "cuda", "module_structure_bugs.py",
                       env=_env()).stdout
        explained = text.split("may explain the crash")[1]
        assert "module_structure_bugs.py:26:26: DL501" in explained, text
        return
    # The static DL501 / DL503 findings are confirmed by parameters that no optimizer holds or no forward uses.
    assert run.verdicts() == {("DL504", 27): "CONFIRMED", ("DL501", 26): "CONFIRMED", ("DL503", 28): "CONFIRMED"}
    assert not run.runtime("DL501") and not run.runtime("DL503")
    assert "aux_head" in next(f for f in run.data["findings"] if f["code"] == "DL503")["message"]


# -- clean near-misses: a confirmation here is a false alarm ----------------------------------------

@pytest.mark.parametrize("name", ["clean_training_loops", "clean_models", "gpu_script_on_cpu", "model_clean"])
def test_clean_programs_confirm_nothing(confirm_runs, name):
    run = confirm_runs(name)
    assert run.returncode == 0, run
    assert run.confirmed() == []
    assert [f for f in run.data["runtime_findings"] if f["severity"] != "info"] == []


def test_teacher_and_pseudo_label_forwards_are_info_only(confirm_runs):
    run = confirm_runs("clean_training_loops")
    infos = run.runtime("DL301")
    assert infos and all(f["severity"] == "info" for f in infos)
    assert {f["verdict"] for f in run.data["findings"]} <= {"NOT REPRODUCED", "NOT REACHED", "NOT CHECKED"}


@pytest.mark.skipif(TEST_DEVICE != "cuda", reason="needs DLLINT_TEST_DEVICE=cuda and a GPU")
def test_every_script_ran_on_the_gpu(confirm_runs):
    # The hung run is killed by the parent, which cannot know the device; gpu_script_on_cpu forces the CPU.
    devices = {name: confirm_runs(name).data["run"]["device"] for name in RUNS
               if confirm_runs(name).data and name not in ("hung_with_workers", "gpu_script_on_cpu")}
    assert len(devices) >= 15 and set(devices.values()) == {"cuda"}, devices
    gpu_run = confirm_runs("gpu_script_on_gpu")
    assert gpu_run.returncode == 0 and gpu_run.confirmed() == [], gpu_run
    assert gpu_run.data["run"]["status"] == "finished" and gpu_run.data["run"]["steps"] == 8


@pytest.mark.skipif(TEST_DEVICE == "cuda", reason="this machine is meant to have CUDA")
def test_device_cuda_without_a_gpu_is_a_clear_failure(confirm_runs):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for name in ("cuda_asked_for_script", "cuda_asked_for_model"):
        result = confirm_runs(name)
        assert result.returncode == 2, result
        assert "--device cuda was asked for, but torch.cuda.is_available() is false" in result.stdout + result.stderr


def test_gpu_script_runs_on_cpu_as_one_process_without_compile(confirm_runs):
    run = confirm_runs("gpu_script_on_cpu")
    assert run.data["run"]["status"] == "finished" and run.data["run"]["steps"] == 8
    assert any("torch.compile was bypassed" in note for note in run.data["run"]["notes"])


# -- failures ---------------------------------------------------------------------------------------

def test_crash_from_a_detached_loss_shows_the_traceback_and_confirms_the_cause(confirm_runs):
    run = confirm_runs("detached_loss_crash")
    assert run.returncode == 1, run
    assert "DL402 [detached-loss-path]" in run.stdout
    assert "traceback (the script's frames):" in run.stdout
    assert 'detached_loss_crash.py", line 18, in train_step' in run.stdout
    assert "does not require grad" in run.stdout
    assert "crashed" in run.stderr


def test_a_crash_with_nothing_confirmed_exits_2_with_the_traceback(confirm_runs):
    run = confirm_runs("shape_error_crash")
    assert run.returncode == 2, run
    assert run.data["run"]["status"] == "crashed" and run.data["run"]["steps"] == 2
    assert "mat1 and mat2 shapes cannot be multiplied" in run.data["run"]["traceback"]
    assert 'shape_error_crash.py", line 12, in loss_on' in run.data["run"]["traceback"]


def test_network_access_fails_fast_naming_the_line(confirm_runs):
    run = confirm_runs("download")
    assert run.returncode == 1, run  # the script crashed, and RT901 is an error finding
    assert "RT901 [network-access]" in run.stdout
    assert "dataset_download.py:7" in run.stdout and "example.com" in run.stdout
    assert run.seconds < 20


def test_every_route_to_the_network_fails_at_once_and_local_connections_work(confirm_runs):
    run = confirm_runs("network_routes")
    try:
        with open(NETWORK_ROUTES) as handle:
            routes = json.load(handle)
    finally:
        if os.path.exists(NETWORK_ROUTES):
            os.remove(NETWORK_ROUTES)
    assert run.returncode == 1, run  # RT901 errors set the exit status
    assert run.runtime("RT901") and all(f["path"] == "network_routes.py" for f in run.runtime("RT901"))
    local = routes.pop("local_connection")
    assert local[0] == "connected"
    # Programs the script starts go through a proxy that is a closed local port.
    assert routes.pop("subprocess_https_proxy") == "http://127.0.0.1:9"
    assert {name: outcome for name, (outcome, _) in routes.items() if outcome != "NetworkBlockedError"} == {}
    assert max(seconds for _, seconds in routes.values()) < 1.0


def test_the_first_progress_line_says_that_the_script_is_executed(confirm_runs):
    run = confirm_runs("softmax_no_zero_grad")
    assert run.stderr.splitlines()[0].startswith(
        "dllint: running no_zero_grad_softmax.py (your code is executed) for up to 20 optimizer steps"), run


def test_the_timeout_covers_the_static_analysis_of_a_large_folder(tmp_path):
    # 300 modules beside the script take far longer to analyse than the timeout allows.
    with open(os.path.join(SCRIPTS, "clean_training_loops.py")) as handle:
        module = handle.read()
    for number in range(300):
        (tmp_path / f"experiment_{number}.py").write_text(module)
    with open(os.path.join(SCRIPTS, "no_zero_grad_softmax.py")) as handle:
        (tmp_path / "train.py").write_text(handle.read())
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "dllint", "confirm", "--format", "json", "--timeout", "6",
                             "train.py"], cwd=tmp_path, capture_output=True, text=True, env=_env(), timeout=60)
    seconds = time.monotonic() - started
    run = json.loads(result.stdout)["run"]
    assert any("static analysis" in note and "took more than" in note for note in run["notes"]), result
    # Half the timeout for the analysis, then the run (its torch import too, slow on a busy machine), and
    # the command's own start: far less than analysing the whole folder (40 s and more).
    assert seconds < 6 / 2 + run["seconds"] + 4, (seconds, result.stderr)


def test_an_infinite_loop_stops_at_the_timeout(confirm_runs):
    run = confirm_runs("infinite_loop")
    assert run.returncode == 0, run
    # Two steps, then the loop: unless a loaded machine spends the 5 s on importing torch.
    assert run.data["run"]["status"] == "timeout" and run.data["run"]["steps"] <= 2
    assert run.seconds < 20


def test_a_nonzero_sys_exit_is_a_failed_run(confirm_runs):
    run = confirm_runs("exit_status")
    assert run.returncode == 2, run
    assert run.data["run"]["status"] == "exited" and run.data["run"]["exit_code"] == 3
    assert "sanity check failed" in run.data["output_tail"]["stdout"]


# -- the user's run is never broken ---------------------------------------------------------------

def test_the_step_budget_holds_when_the_optimizer_is_rebuilt_and_the_code_after_the_loop_runs(confirm_runs):
    flat = confirm_runs("rebuilt_optimizer_flat")
    # "finished": the loop was left after 20 steps and the evaluation after it ran to the script's end.
    assert flat.data["run"]["status"] == "finished" and flat.data["run"]["steps"] == 20, flat
    inside = confirm_runs("rebuilt_optimizer_in_function")
    # No statement follows that loop in its function: the next step stops the script.
    assert inside.data["run"]["status"] == "stopped" and inside.data["run"]["steps"] == 20, inside


@pytest.mark.parametrize("name", ["gan", "rnn_tbptt", "ddp_gloo", "torchscript"])
def test_gan_truncated_bptt_distributed_and_torchscript_scripts_run_under_confirm_as_under_python(confirm_runs,
                                                                                                  name):
    run = confirm_runs(name)
    assert run.returncode == 0 and run.data["run"]["steps"] == 20, run
    # The TBPTT epoch loop is the last statement of main(): the next epoch's first step stops it.
    assert run.data["run"]["status"] == ("stopped" if name == "rnn_tbptt" else "finished"), run
    assert not run.data["run"]["notes"] and not run.data["runtime_findings"], run


def test_kept_loss_graphs_are_judged_over_the_whole_run_not_at_its_last_step(confirm_runs):
    run = confirm_runs("epoch_running_total")
    assert run.verdicts() == {("DL104", 18): "CONFIRMED"}, run


# -- runtime-only findings -------------------------------------------------------------------------

def test_a_head_replaced_after_the_optimizer_was_built_confirms_dl109_and_its_near_misses_do_not(confirm_runs):
    replaced = confirm_runs("head_replaced")
    assert replaced.returncode == 1, replaced
    assert replaced.verdicts() == {("DL109", 28): "CONFIRMED"}
    evidence = replaced.confirmed()[0]["evidence"]
    assert "SmallNet.fc was assigned after the optimizer was built" in evidence and "SmallNet.fc.weight" in evidence
    confirm_runs("head_frozen").assert_quiet()
    head_only = confirm_runs("head_only_optimized")
    assert head_only.returncode == 0, head_only
    assert [(f["line"], f["severity"]) for f in head_only.runtime("RT103")] == [(57, "info")]


def test_raw_pixels_and_constant_channels_reaching_the_model_are_found_and_normalized_images_are_not(
        confirm_runs):
    raw = confirm_runs("pixels_raw")
    finding = raw.lone_runtime_finding("RT203")
    assert finding["line"] == 44 and "from 0 to 255" in finding["message"]
    assert not raw.runtime("RT204")
    confirm_runs("pixels_scaled").assert_quiet()
    padded = confirm_runs("pixels_padded_gray")
    assert padded.returncode == 1, padded
    (constant,) = padded.data["runtime_findings"]
    assert constant["code"] == "RT204" and constant["line"] == 44
    assert "channels 1 and 2 (always 0) of the (32, 3, 16, 16) images" in constant["message"]
    assert "over 128 samples in 4 batches" in constant["message"]


def test_exploding_gradient_norms_are_found_before_anything_is_nan_and_a_converging_run_is_quiet(confirm_runs):
    high = confirm_runs("lr_too_high")
    finding = high.lone_runtime_finding("RT104")
    assert finding["line"] == 22 and "the gradient norm grew from" in finding["message"]
    assert not high.runtime("RT101") and not high.runtime("RT102")  # nothing was NaN yet
    confirm_runs("lr_fine").assert_quiet()


def test_steps_without_backward_and_backward_without_steps_confirm_dl108_and_a_closure_does_not(confirm_runs):
    no_backward = confirm_runs("step_no_backward")
    assert no_backward.verdicts() == {("DL108", 16): "CONFIRMED"}, no_backward
    no_step = confirm_runs("backward_no_step")
    (finding,) = no_step.runtime("DL108")
    assert finding["line"] == 48 and "never stepped" in finding["message"], no_step
    lbfgs = confirm_runs("lbfgs_closure")
    assert lbfgs.returncode == 0 and not lbfgs.runtime("DL108"), lbfgs


def test_a_loss_term_added_as_a_number_leaves_its_head_without_gradients(confirm_runs):
    number = confirm_runs("loss_term_number")
    finding = number.lone_runtime_finding("DL402")
    assert finding["line"] == 31 and "MultiTask.side (Linear, 33 parameters)" in finding["message"]
    confirm_runs("loss_term_tensor").assert_quiet()


def test_a_shared_normalization_layer_is_reuse_and_a_shared_linear_is_a_design(confirm_runs):
    run = confirm_runs("shared_layers")
    assert run.returncode == 1, run
    by_line = {f["line"]: f for f in run.runtime("DL504")}
    assert by_line[15]["severity"] == "info" and "share weights" in by_line[15]["message"]
    assert by_line[28]["severity"] == "error" and "one BatchNorm1d object" in by_line[28]["message"]
    assert set(by_line) == {15, 28}


def test_relu_layers_whose_units_are_dead_for_the_whole_batch_are_found(confirm_runs):
    dead = confirm_runs("dead_relu")
    finding = dead.lone_runtime_finding("RT105")
    assert finding["line"] == 22 and "64 of the 64 units of Sequential.1 (ReLU)" in finding["message"]
    confirm_runs("live_relu").assert_quiet()


# -- model-only checks ------------------------------------------------------------------------------

def test_model_checks_find_batch_mixing_eval_dropout_and_dead_parameters(confirm_runs):
    run = confirm_runs("model_buggy")
    assert run.returncode == 1, run
    codes = {f["code"] for f in run.data["runtime_findings"]}
    assert {"RT301", "DL303", "RT302"} <= codes
    assert all(f["path"] == "toy_models.py" for f in run.data["runtime_findings"])


def _budget(name):
    """25 s for a run; a run meant to hang gets its own timeout and the parent's kill margin."""
    args = RUNS[name]
    return float(args[args.index("--timeout") + 1]) + 5 if name in SHORT_KILL_MARGIN else 25


def test_every_run_stays_within_its_time_budget(confirm_runs):
    slow = {name: round(confirm_runs(name).seconds, 1) for name in RUNS if confirm_runs(name).seconds > _budget(name)}
    assert not slow


# -- usage ------------------------------------------------------------------------------------------

def _dllint(*args, env=None):
    return subprocess.run([sys.executable, "-m", "dllint", *args], cwd=SCRIPTS, capture_output=True, text=True,
                          env=env, timeout=60)


def test_confirm_without_torch_is_a_one_line_error():
    code = ("import sys; sys.modules['torch'] = None; sys.argv = ['dllint', 'confirm', 'no_zero_grad_softmax.py']\n"
            "from dllint.cli import main\nmain()")
    env = _env()
    result = subprocess.run([sys.executable, "-c", code], cwd=SCRIPTS, capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "dllint: error: dllint confirm needs torch, which is not installed: pip install 'dllint[runtime]'"]


def test_missing_script_and_missing_target_are_usage_errors():
    env = _env()
    missing = _dllint("confirm", "nope.py", env=env)
    assert missing.returncode == 2 and missing.stderr.strip() == "dllint: error: nope.py: no such file"
    nothing = _dllint("confirm", env=env)
    assert nothing.returncode == 2 and "give exactly one of SCRIPT" in nothing.stderr



@pytest.mark.skipif(os.name != "posix", reason="process groups")
def test_a_hung_script_is_killed_with_its_dataloader_workers_and_escaped_processes(confirm_runs):
    run = confirm_runs("hung_with_workers")
    assert run.returncode == 0, run
    assert run.data["run"]["status"] == "timeout"
    assert any("process group was killed" in note for note in run.data["run"]["notes"])
    try:
        with open(WORKER_PIDS) as handle:
            workers, escaped = ([int(pid) for pid in line.split()] for line in handle.read().splitlines())
    finally:
        if os.path.exists(WORKER_PIDS):
            os.remove(WORKER_PIDS)  # the script wrote it outside the test's tmp_path
    assert len(workers) == 2 and len(escaped) == 2
    # Killed processes disappear once their parent (or init) reaps them: give a loaded machine time.
    deadline = time.monotonic() + 10
    while [pid for pid in workers + escaped if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in workers if _alive(pid)]
    # A server in a new session and a setsid daemon: outside the process group, killed all the same.
    assert not [pid for pid in escaped if _alive(pid)]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/status") as handle:
            return "\nState:\tZ" not in handle.read()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
