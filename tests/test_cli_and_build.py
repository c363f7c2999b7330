"""The command line, the build configuration, and the README/CI contract."""
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import cgdn
from cgdn import __main__ as cli
from cgdn import _core, _isa

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_openmp_enabled_in_this_build():
    # As sklearn's test_openmp_parallelism_enabled: CI must not ship serial kernels.
    info = cgdn.show_config(mode="dicts")
    assert info["openmp"] is True
    assert info["max_threads"] >= 1
    assert any(p["user_api"] == "blas" for p in info["threadpools"])


def test_show_config_prints(capsys):
    assert cgdn.show_config() is None
    text = capsys.readouterr().out
    assert "openmp" in text and "max_threads" in text and "blas" in text


def test_show_config_bad_mode():
    import pytest

    with pytest.raises(ValueError, match="mode"):
        cgdn.show_config(mode="json")


def test_demo_input_is_deterministic_and_image_like():
    a, b = cli.demo_input(), cli.demo_input()
    np.testing.assert_array_equal(a, b)
    assert a.shape == cli.DEMO_SHAPE and a.dtype == np.float32
    # neighbouring pixels are strongly correlated, unlike noise
    corr = np.corrcoef(a[0, :, :-1, 0].ravel(), a[0, :, 1:, 0].ravel())[0, 1]
    assert corr > 0.9


def test_demo_and_info_subprocess():
    demo = subprocess.run([sys.executable, "-m", "cgdn", "demo", "--repeats", "1"],
                          capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "demo: OK" in demo.stdout
    # the way back to x is shown through the exact inverse, and the timing as interleaved
    # rounds with their spread
    exact = re.findall(r"gdn_inverse\(GDN\(x\)\) ([\d.e+-]+) \(exact inverse\)", demo.stdout)
    assert len(exact) == 2 and all(float(e) < 1e-5 for e in exact)
    assert re.search(r"speed-up [\d.]+x \(rounds [\d.]+x-[\d.]+x\)", demo.stdout)
    info = subprocess.run([sys.executable, "-m", "cgdn", "info"], capture_output=True,
                          text=True, timeout=120)
    assert info.returncode == 0 and "openmp         on" in info.stdout


def _source_tree(*parts):
    path = ROOT.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{'/'.join(parts)} is not here: testing an installed package without its "
                    f"source tree")
    return path


def test_ci_runs_the_readme_test_command():
    readme = _source_tree("README.md").read_text()
    _source_tree(".ci", "run")
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))]
    assert ci_lines, ".ci/run runs nothing"
    for line in ci_lines:
        assert line in readme, f"{line!r} from .ci/run is not the README's test command"


def test_build_outputs_are_ignored():
    ignore = _source_tree(".gitignore").read_text()
    for pattern in ("*.so", "cgdn/*.c", "build/"):
        assert pattern in ignore


def test_debug_build_matches_environment():
    # .ci/run builds and tests a second time with CGDN_CYTHON_DEBUG=1 exported: that run
    # must really use the bounds-checked kernels.
    import os

    assert _core.DEBUG_BUILD == (os.environ.get("CGDN_CYTHON_DEBUG") == "1")


def test_bench_quick_smoke(tmp_path):
    # The benchmark's plumbing (not its speed): one tiny shape, a table, JSON out.
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "cgdn", "bench", "--shapes", "1,8,8,3",
                          "1,4,4,20", "--rounds", "1", "--repeats", "1", "--threads", "1",
                          "--no-torch", "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "| 1,8,8,3 | 1 |" in run.stdout and "cgdn/floor" in run.stdout
    assert "command: python -m cgdn bench" in run.stdout
    import json

    results = json.loads(out.read_text())["results"]
    assert [r["shape"] for r in results] == [[1, 8, 8, 3], [1, 4, 4, 20]]
    assert all(r["ms"]["cgdn"] > 0 for r in results)


def test_bench_isa_children_and_sweep(tmp_path):
    # --isa runs each variant in a child process; --sweep-channels picks channel counts.
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "cgdn", "bench", "--sweep-channels", "3:4",
                          "--isa", _isa.kernels.ISA, "--rounds", "1", "--repeats", "1",
                          "--threads", "1", "--no-torch", "--no-numpy",
                          "--data-format", "channels_last", "channels_first",
                          "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    import json

    results = json.loads(out.read_text())["results"]
    assert [(r["isa"], r["data_format"], r["shape"]) for r in results] == [
        (_isa.kernels.ISA, layout, [1, 256, 256, c])
        for layout in ("channels_last", "channels_first") for c in (3, 4)]
    assert "| channels_first | 1,256,256,4 | 1 |" in run.stdout


def test_bench_refuses_an_isa_this_cpu_cannot_run():
    run = subprocess.run([sys.executable, "-m", "cgdn", "bench", "--isa", "sse9",
                          "--no-torch"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "--isa: sse9 cannot run on this CPU" in run.stderr


def test_readme_links_resolve():
    import re

    readme = _source_tree("README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert links, "the README links to its documentation"
    for link in links:
        if not link.startswith(("http://", "https://")):
            assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


@pytest.mark.parametrize("argv,message", [
    (["bench", "--threads", "0"], "argument --threads: expected a value > 0, got '0'"),
    (["bench", "--threads", "two"], "argument --threads: expected a number"),
    (["bench", "--alpha", "-1"], "argument --alpha: expected a value > 0"),
    (["bench", "--epsilon", "nan"], "argument --epsilon: expected a value > 0"),
    (["bench", "--rounds", "0"], "argument --rounds"),
    (["bench", "--min-time", "-0.5"], "argument --min-time: expected a value >= 0"),
    (["bench", "--quick"], "unrecognized arguments: --quick"),
    (["demo", "--repeats", "0"], "argument --repeats: expected a positive int"),
])
def test_cli_bad_values_are_argparse_errors(argv, message):
    run = subprocess.run([sys.executable, "-m", "cgdn", *argv], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr


def test_cli_help_is_plain_text_and_complete():
    from cgdn._bench import build_parser

    top = subprocess.run([sys.executable, "-m", "cgdn", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert top.returncode == 0 and "``" not in top.stdout and ":func:" not in top.stdout
    for quick in (False, True):
        parser = build_parser("bench", quick=quick)
        options = {o: a for a in parser._actions for o in a.option_strings}
        # every option has help (but the internal --child); the quick form has no options
        # that would do nothing there
        assert all(a.help for o, a in options.items() if o != "--child"), sorted(
            o for o, a in options.items() if not a.help)
        assert ("--quick" in options) == (not quick) and ("--progress" in options) == (not quick)
