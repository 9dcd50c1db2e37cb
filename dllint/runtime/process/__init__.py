"""Running the user's code: the parent side of `dllint confirm` (session: lint, start the child, wait,
kill, judge) and the child (child: run the script as python would), the environment the script runs in
(sandbox: device, compile, distributed, network), ending the run (stopping, loop_exit) and line
coverage for NOT REACHED. The checks themselves live in dllint.runtime.checks."""
