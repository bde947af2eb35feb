"""Progress lines in logs (not a terminal), nothing with -q; the global -v/-q/--threads options."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from plantt import progress as P
from plantt.cli import _command_of, build_parser, main


def test_a_log_line_per_step_when_not_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="plantt")
    log = logging.getLogger("plantt.test")
    assert list(P.progress(range(3), desc="genes", unit="gene", log=log)) == [0, 1, 2]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and lines[0].startswith("genes: 1/3 gene(s) done")
    assert "left" in lines[0] and "left" not in lines[-1]
    caplog.clear()
    assert sum(1 for _ in P.progress(iter(range(2500)), desc="records", log=log, every=1000)) \
        == 2500
    assert [r.getMessage().split(" done")[0] for r in caplog.records] == \
        ["records: 1000 step(s)", "records: 2000 step(s)"]


def test_quiet_means_no_progress(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="plantt")
    P.set_quiet(True)
    try:
        assert list(P.progress([1, 2], desc="x")) == [1, 2]
    finally:
        P.set_quiet(False)
    assert not caplog.records


def test_global_options_come_before_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _command_of(["--threads", "3", "-q", "ism", "--model", "m"]) == "ism"
    args = build_parser("count").parse_args(["-v", "--threads", "2", "count", "--bam", "b",
                                             "--annotation", "a", "--assay", "proseq",
                                             "--out", "o"])
    assert args.verbose and not args.quiet and args.threads == 2
    with pytest.raises(SystemExit):
        build_parser("count").parse_args(["-v", "-q", "count"])  # one or the other
    # (monkeypatch restores these variables afterwards, and the PyTorch pool is put back: the
    # rest of the suite must not run on one thread)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "PLANTT_THREADS"):
        monkeypatch.setenv(name, "unset")
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    try:
        # a command that fails on its input still applied the thread setting first
        assert main(["--threads", "1", "-q", "count", "--bam", "missing.bam", "--annotation",
                     "missing.gff3", "--assay", "proseq", "--out", "x.tsv"]) != 0
        assert os.environ["OMP_NUM_THREADS"] == "1"
    finally:
        if torch:
            torch.set_num_threads(before)
        P.set_quiet(False)
        logging.getLogger("plantt").setLevel(logging.INFO)  # -q set it to WARNING
