"""Every long step is safe to kill: SIGKILL mid-run, rerun, get what an uninterrupted run gets.

For read counting (the ``count_reads`` rule's script), window extraction (``extract_windows``) and a
training job (:func:`plantt.train.train_fold`), a child process runs the step and is SIGKILLed at a
chosen point: in the middle of the work, while an output's temporary is written (so it is left
behind, as a real kill leaves it), between two outputs, or, for training, at whatever point it has
reached half an epoch after its first checkpoint. The child announces that it reached the point
(a marker file) and stalls there, so the kill never misses and the test never passes vacuously:
every kill is checked to have ended the child before it finished. The step is then rerun to
completion and its outputs compared with an uninterrupted run's (identical bytes; for training,
identical weights), and no temporary file may remain beside them.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import os
import runpy
import select
import signal
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pysam
import pytest
import torch

import plantt
import plantt.io as plantt_io
from plantt.io import atomic_path, remove_stale_temporaries, write_tsv
from plantt.train import CHECKPOINT, PairSet, TrainSettings, train_fold

# the writer tag in plantt.io.atomic_path temporaries: ".{name}.p{pid}-{host}.XXXXXXXX{suffix}"
TEMP_TAG = r"p\d+-[A-Za-z0-9-]+\."

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"

# The children are forked from one "zygote" process that has imported everything once (torch,
# pandas, pysam, every plantt module): a fresh interpreter per kill would cost seconds each. For
# each job (a JSON line on stdin) it forks a child, prints the child's pid, waits for it and
# prints how it ended ("exit N" or "signal N"). The child optionally wraps one function so that
# its n-th call (whose argument ``arg`` is a file named like ``name``) first writes the marker and
# stalls, then runs a rule script the way Snakemake does (its folder on sys.path, a global
# ``snakemake`` object).
ZYGOTE = r"""
import importlib, json, os, re, runpy, sys, time, traceback, types
from pathlib import Path
import numpy, pandas, pysam, pyfaidx, torch, torch._inductor  # noqa: F401 (imported once, here)
import plantt.cli, plantt.train
plantt.cli.build_parser()  # imports every subcommand's module

def resolve(dotted):
    module, _, attr = dotted.partition(":")
    owner = importlib.import_module(module)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, name

def child(job):
    pause = job["pause"]
    if pause:
        owner, name = resolve(pause["function"])
        original = getattr(owner, name)
        calls = [0]

        def stall_then_call(*args, **kwargs):
            matched = True
            if pause["arg"] is not None:
                value = args[pause["arg"]]
                file_name = Path(str(getattr(value, "name", value))).name
                matched = re.fullmatch(pause["name"], file_name) is not None
            if matched:
                calls[0] += 1
                if calls[0] == pause["nth"]:
                    part = Path(job["marker"] + ".part")
                    part.write_text(pause["label"])
                    os.rename(part, job["marker"])
                    time.sleep(600)  # SIGKILLed here
            return original(*args, **kwargs)

        setattr(owner, name, stall_then_call)
    sys.path.insert(0, str(Path(job["script"]).parent))
    ns = types.SimpleNamespace
    snakemake = ns(input=ns(**job["input"]), output=ns(**job["output"]),
                   params=ns(**job["params"]), wildcards=ns(**job["wildcards"]), log=job["log"])
    runpy.run_path(job["script"], init_globals={"snakemake": snakemake}, run_name="__main__")

for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            sys.stdin.close()
            err = os.open(job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(err, 1)
            os.dup2(err, 2)
            child(job)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        print("signal", os.WTERMSIG(status), flush=True)
    else:
        print("exit", os.WEXITSTATUS(status), flush=True)
"""


# A training job as a script, for the driver: train_fold on arrays saved as .npy files.
TRAIN_SCRIPT = '''
from pathlib import Path
import numpy as np
from plantt.train import PairSet, TrainSettings, train_fold

sm = snakemake
data = Path(sm.input.data)
load = lambda name: PairSet(*(np.load(data / f"{name}_{key}.npy")
                              for key in ("idx_a", "idx_b", "target")))
train_fold(np.load(data / "codes.npy"), load("train"), load("val"),
           TrainSettings(**sm.params.settings), sm.output.model, progress=False, plots=False)
'''


def pause_at(label: str, function: str, name: str | None = None, arg: int | None = None,
             nth: int = 1) -> dict[str, Any]:
    """Where the child stalls: the ``nth`` call of ``function`` ("module:attribute", e.g.
    "os:replace") whose argument ``arg`` is a file named like the regular expression ``name``."""
    return {"label": label, "function": function, "name": name, "arg": arg, "nth": nth}


def job(script: Path, workdir: Path, *, input: dict[str, str], output: dict[str, str],
        params: dict[str, Any], wildcards: dict[str, str]) -> dict[str, Any]:
    return {"script": str(script), "input": input, "output": output, "params": params,
            "wildcards": wildcards, "log": [str(workdir / "logs" / "job.log")],
            "marker": str(workdir / "marker"), "stderr": str(workdir / "child.stderr"),
            "pause": None}


class Zygote:
    """The forking process (ZYGOTE above), started once for the module."""

    def __init__(self) -> None:
        # One thread: the killed and the uninterrupted training runs do the same arithmetic.
        env = {**os.environ, "PYTHONPATH": str(Path(plantt.__file__).parents[1]),
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.process = subprocess.Popen([sys.executable, "-c", ZYGOTE], env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.fd = self.process.stdout.fileno()
        self.buffer = b""

    def _line(self, timeout: float) -> str | None:
        """The zygote's next line, or None if there is none within ``timeout`` seconds (read
        unbuffered: a buffered reader could hold a line that select() no longer sees)."""
        while b"\n" not in self.buffer:
            readable, _, _ = select.select([self.fd], [], [], timeout)
            if not readable:
                return None
            data = os.read(self.fd, 4096)
            assert data, f"the zygote died (exit {self.process.poll()})"
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode().strip()

    def run_killed(self, spec: dict[str, Any], ready: Callable[[], bool] | None = None,
                   delay: float = 0.0, timeout: float = 120) -> bool:
        """Run ``spec`` in a child and SIGKILL it once ``ready()`` (default: the pause's marker
        exists), after ``delay`` seconds. True if the kill ended it, False if it had finished."""
        marker = Path(spec["marker"])
        marker.unlink(missing_ok=True)
        Path(spec["log"][0]).parent.mkdir(parents=True, exist_ok=True)
        ready = ready or marker.exists
        self.process.stdin.write(json.dumps(spec) + "\n")
        self.process.stdin.flush()
        pid = int(self._line(timeout) or 0)
        assert pid > 0, "the zygote did not fork"
        deadline = time.monotonic() + timeout
        ended = None
        while ended is None and not ready():
            assert time.monotonic() < deadline, "the child never reached the kill point"
            ended = self._line(0.005)
        if ended is None:
            time.sleep(delay)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            ended = self._line(timeout)
        if ended == "exit 0":
            return False
        assert ended == f"signal {signal.SIGKILL}", \
            f"the child ended with {ended}:\n{Path(spec['stderr']).read_text()[-3000:]}"
        return True

    def close(self) -> None:
        # No child is running between jobs; killing skips the interpreter's slow teardown.
        self.process.kill()
        self.process.wait()
        self.process.stdin.close()
        self.process.stdout.close()


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    forker = Zygote()
    yield forker
    forker.close()


@contextlib.contextmanager
def isolated_logging() -> Iterator[None]:
    """Rule scripts reconfigure the ``plantt`` logger (and the CLI swaps sys.stderr): undo that."""
    logger = logging.getLogger("plantt")
    handlers, level = logger.handlers[:], logger.level
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)


def run_here(spec: dict[str, Any]) -> None:
    """Run ``spec`` to completion in this process (the uninterrupted run and the reruns)."""
    Path(spec["log"][0]).parent.mkdir(parents=True, exist_ok=True)
    ns = types.SimpleNamespace
    snakemake = ns(input=ns(**spec["input"]), output=ns(**spec["output"]),
                   params=ns(**spec["params"]), wildcards=ns(**spec["wildcards"]), log=spec["log"])
    sys.path.insert(0, str(SCRIPTS))  # as Snakemake does for script rules
    try:
        with isolated_logging():
            runpy.run_path(spec["script"], init_globals={"snakemake": snakemake},
                           run_name="__main__")
    finally:
        sys.path.remove(str(SCRIPTS))


def files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def temporaries(*directories: Path) -> list[str]:
    """Hidden files (``.{name}.XXXXXXXX{suffix}`` temporaries of atomic_path) and ``*.tmp``."""
    return sorted(str(p) for d in directories for p in d.rglob("*")
                  if p.name.startswith(".") or p.name.endswith(".tmp"))


# ----------------------------------------------------------------------------------------------
# Inputs: a two-contig genome, genes on both strands, a coordinate-sorted BAM
# ----------------------------------------------------------------------------------------------
CONTIGS = {"chr1": 20_000, "chr2": 8_000}
# (gene id, contig, 0-based start, end, strand)
GENES = [("g1", "chr1", 2000, 5000, "+"), ("g2", "chr1", 4500, 7000, "-"),
         ("g3", "chr1", 9000, 12000, "+"), ("g4", "chr1", 14000, 19500, "-"),
         ("g5", "chr2", 500, 3000, "+"), ("g6", "chr2", 4000, 7600, "-")]


def write_genome(directory: Path) -> None:
    rng = np.random.default_rng(5)
    with open(directory / "genome.fa", "w") as handle:
        for name, length in CONTIGS.items():
            seq = "".join(rng.choice(list("ACGT"), size=length))
            handle.write(f">{name}\n" + "".join(seq[i:i + 60] + "\n" for i in range(0, length, 60)))
    lines = ["##gff-version 3"]
    for gene, contig, start, end, strand in GENES:
        lines += [f"{contig}\tt\tgene\t{start + 1}\t{end}\t.\t{strand}\t.\tID={gene}",
                  f"{contig}\tt\tmRNA\t{start + 1}\t{end}\t.\t{strand}\t.\tID={gene}.1;Parent={gene}",
                  f"{contig}\tt\texon\t{start + 1}\t{end}\t.\t{strand}\t.\tParent={gene}.1"]
    (directory / "genes.gff3").write_text("\n".join(lines) + "\n")
    pairs = pd.DataFrame({"gene_a": ["g1", "g3", "g5"], "species_a": "sp",
                          "gene_b": ["g2", "g4", "g6"], "species_b": "sp"})
    pairs.to_csv(directory / "pairs.tsv", sep="\t", index=False)


def write_bam(path: Path, n_reads: int = 3000, seed: int = 2) -> None:
    rng = np.random.default_rng(seed)
    header = {"HD": {"VN": "1.6", "SO": "coordinate"},
              "SQ": [{"SN": name, "LN": length} for name, length in CONTIGS.items()]}
    reads = sorted((int(rng.integers(len(CONTIGS))), int(rng.integers(0, 7900))) for _ in range(n_reads))
    with pysam.AlignmentFile(str(path), "wb", header=header) as bam:
        for i, (contig, start) in enumerate(reads):
            read = pysam.AlignedSegment(bam.header)
            read.query_name = f"r{i}"
            read.query_sequence = "ACGT" * 12
            read.query_qualities = pysam.qualitystring_to_array("I" * 48)
            read.flag = 16 if rng.random() < 0.5 else 0
            read.reference_id, read.reference_start = contig, start
            read.mapping_quality = 255 if rng.random() < 0.9 else 3
            read.cigartuples = [(0, 48)]
            bam.write(read)
    pysam.index("-c", str(path))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("inputs")
    write_genome(directory)
    write_bam(directory / "s1.bam")
    return directory


def count_job(inputs: Path, workdir: Path) -> dict[str, Any]:
    out = workdir / "results" / "counts"
    return job(SCRIPTS / "count_reads.py", workdir,
               input={"bam": str(inputs / "s1.bam"), "csi": str(inputs / "s1.bam.csi"),
                      "annotation": str(inputs / "genes.gff3")},
               output={"counts": str(out / "s1.tsv"), "summary": str(out / "s1.summary.tsv")},
               params={"settings": {"assay": "rnaseq3p", "min_mapq": 255, "extension": 500},
                       "chunk_size": 50_000},
               wildcards={"sample": "s1"})


def windows_job(inputs: Path, workdir: Path) -> dict[str, Any]:
    # The genome is copied: pyfaidx writes its .fai index beside it on the first run.
    genome = workdir / "genome"
    genome.mkdir(parents=True, exist_ok=True)
    for name in ("genome.fa", "genes.gff3", "pairs.tsv"):
        (genome / name).write_bytes((inputs / name).read_bytes())
    out = workdir / "results" / "windows"
    return job(SCRIPTS / "extract_windows.py", workdir,
               input={"fasta": str(genome / "genome.fa"), "annotation": str(genome / "genes.gff3"),
                      "pairs": str(genome / "pairs.tsv")},
               output={"fasta": str(out / "sp.fa"), "coords": str(out / "sp.coords.tsv")},
               params={"layout": {"upstream": 1000, "gene_part": 500, "downstream": 1000,
                                  "mask": 3}},
               wildcards={"species": "sp"})


def replace_of(label: str, name: str) -> dict[str, Any]:
    """Stall just before atomic_path renames the finished temporary onto ``name``."""
    return pause_at(label, "os:replace", name=name, arg=1)


COUNT_KILLS = {
    "while counting": [pause_at("counting", "plantt.quantify:RegionIndex.assign", nth=3)],
    "while writing the counts": [replace_of("counts", r"s1\.tsv")],
    "between the two outputs, twice": [replace_of("summary", r"s1\.summary\.tsv"),
                                       replace_of("summary", r"s1\.summary\.tsv")],
}

WINDOWS_KILLS = {
    # pyfaidx has opened the .fai it builds on the first run (its temporary: plantt.windows builds
    # it through atomic_path, as pyfaidx would write it in place), not yet written it
    "while indexing the genome": [pause_at("indexing", "shutil:copyfileobj",
                                           name=TEMP_TAG.join([r"\.genome\.fa\.fai\.", r"\w{8}\.fai"]),
                                           arg=1)],
    "while extracting": [pause_at("extracting", "plantt.windows:part_intervals")],
    "while writing the windows": [replace_of("fasta", r"sp\.fa")],
    "between the two outputs": [replace_of("coords", r"sp\.coords\.tsv")],
}


def kill_then_rerun(zygote: Zygote, spec: dict[str, Any], kills: list[dict[str, Any]],
                    out: Path) -> list[str]:
    """Kill ``spec`` at each of ``kills`` in turn, then rerun it here; the temporaries the kills
    left are returned (the rerun must remove them)."""
    for pause in kills:
        assert zygote.run_killed({**spec, "pause": pause}), f"not killed at {pause['label']}"
        assert Path(spec["marker"]).read_text() == pause["label"]
    left = temporaries(out)
    run_here(spec)
    return left


@pytest.fixture(scope="module")
def uninterrupted_counts(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    workdir = tmp_path_factory.mktemp("counts_straight")
    run_here(count_job(inputs, workdir))
    return files(workdir / "results")


@pytest.mark.parametrize("where", list(COUNT_KILLS))
def test_killed_counting_reruns_to_the_same_bytes(zygote, inputs, uninterrupted_counts, tmp_path,
                                                  where):
    spec = count_job(inputs, tmp_path)
    out = tmp_path / "results"
    left = kill_then_rerun(zygote, spec, COUNT_KILLS[where], out)
    if where != "while counting":  # a kill mid-write leaves the temporary behind ...
        assert left, "the kill should have left a temporary"
    assert files(out) == uninterrupted_counts
    assert temporaries(out) == []  # ... and the successful rerun removes it
    assert len(uninterrupted_counts) == 2


@pytest.fixture(scope="module")
def uninterrupted_windows(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    workdir = tmp_path_factory.mktemp("windows_straight")
    run_here(windows_job(inputs, workdir))
    return files(workdir / "results")


@pytest.mark.parametrize("where", list(WINDOWS_KILLS))
def test_killed_window_extraction_reruns_to_the_same_bytes(zygote, inputs, uninterrupted_windows,
                                                           tmp_path, where):
    spec = windows_job(inputs, tmp_path)
    out = tmp_path / "results"
    left = kill_then_rerun(zygote, spec, WINDOWS_KILLS[where], out)
    if where not in ("while extracting", "while indexing the genome"):
        assert left, "the kill should have left a temporary"
    assert files(out) == uninterrupted_windows
    assert temporaries(out, tmp_path / "genome") == []
    assert sorted(uninterrupted_windows) == ["windows/sp.coords.tsv", "windows/sp.fa"]


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
TRAIN_SETTINGS = dict(preset="small", max_epochs=4, patience=10, batch_size=16, max_lr=3e-3,
                      warmup_steps=5, num_threads=1, seed=5, eval_batch_size=64)


@pytest.fixture(scope="module")
def training(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Data of a tiny fold (96 training, 32 validation pairs of 256-bp windows) saved for the child
    and the uninterrupted run's weights and history."""
    directory = tmp_path_factory.mktemp("training")
    rng = np.random.default_rng(9)
    codes = rng.integers(0, 4, size=(120, 256), dtype=np.uint8)
    data = directory / "data"
    data.mkdir()
    np.save(data / "codes.npy", codes)
    sets = {}
    for name, n, genes in (("train", 96, np.arange(90)), ("val", 32, np.arange(90, 120))):
        sets[name] = PairSet(rng.choice(genes, n), rng.choice(genes, n), rng.normal(size=n))
        for key in ("idx_a", "idx_b", "target"):
            np.save(data / f"{name}_{key}.npy", getattr(sets[name], key))
    script = directory / "train_job.py"
    script.write_text(TRAIN_SCRIPT)
    straight = train_fold(codes, sets["train"], sets["val"], TrainSettings(**TRAIN_SETTINGS),
                          directory / "straight", progress=False, plots=False)
    return {"codes": codes, **sets, "data": data, "script": script, "straight": straight,
            "weights": weights(directory / "straight")}


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(model_dir / "weights.pt", map_location="cpu", weights_only=True)


def train_job(training: dict[str, Any], workdir: Path) -> dict[str, Any]:
    return job(training["script"], workdir, input={"data": str(training["data"])},
               output={"model": str(workdir / "model")}, params={"settings": TRAIN_SETTINGS},
               wildcards={})


def rerun_training(training: dict[str, Any], model_dir: Path) -> None:
    result = train_fold(training["codes"], training["train"], training["val"],
                        TrainSettings(**TRAIN_SETTINGS), model_dir, progress=False, plots=False)
    final, expected = weights(model_dir), training["weights"]
    assert final.keys() == expected.keys()
    different = [k for k in final if not torch.equal(final[k], expected[k])]
    assert not different, f"weights differ from the uninterrupted run's: {different[:5]}"
    metrics = [c for c in result.history.columns if c != "seconds"]
    pd.testing.assert_frame_equal(result.history[metrics], training["straight"].history[metrics])
    assert temporaries(model_dir) == []


def test_training_killed_while_writing_a_checkpoint_resumes_exactly(zygote, training, tmp_path):
    """The known bug: a kill inside a checkpoint write left a 0-byte ``.checkpoint.pt.*.pt``."""
    spec = train_job(training, tmp_path)
    model_dir = tmp_path / "model"
    pause = pause_at("checkpoint 2", "torch:save",
                     name=TEMP_TAG.join([r"\.checkpoint\.pt\.", r"\w{8}\.pt"]), arg=1, nth=2)
    assert zygote.run_killed({**spec, "pause": pause})
    left = [p for p in model_dir.iterdir() if p.name.startswith(".checkpoint.pt.")]
    assert len(left) == 1 and left[0].stat().st_size == 0, left
    history = pd.read_csv(model_dir / "history.tsv", sep="\t")
    assert history["epoch"].tolist() == [1, 2]  # killed in epoch 2's checkpoint, before the end
    rerun_training(training, model_dir)


def test_training_killed_while_writing_the_weights_resumes_exactly(zygote, training, tmp_path):
    """Killed after the last checkpoint: the rerun only writes the outputs, and also clears a
    checkpoint temporary that an older version left (no checkpoint write would remove it)."""
    spec = train_job(training, tmp_path)
    model_dir = tmp_path / "model"
    pause = pause_at("weights", "torch:save", name=TEMP_TAG.join([r"\.weights\.pt\.", r"\w{8}\.tmp"]), arg=1)
    assert zygote.run_killed({**spec, "pause": pause})
    assert not (model_dir / "weights.pt").exists()
    assert temporaries(model_dir), "the kill should have left the weights' temporary"
    (model_dir / ".checkpoint.pt.old_left.pt").write_bytes(b"")
    rerun_training(training, model_dir)


def test_training_killed_at_any_point_resumes_exactly(zygote, training, tmp_path):
    """No stall: killed half an epoch after its first checkpoint appeared, wherever it then is
    (an earlier kill if that point came too late; the child must not have finished)."""
    spec = train_job(training, tmp_path)
    model_dir = tmp_path / "model"
    epoch_seconds = float(training["straight"].history["seconds"].iloc[0])
    for delay in (epoch_seconds / 2, 0.0):
        if zygote.run_killed(spec, ready=(model_dir / CHECKPOINT).exists, delay=delay):
            break
        for path in model_dir.iterdir():  # it finished first: start that attempt again
            path.unlink()
    else:
        pytest.fail("the training finished every time before it could be killed")
    assert not (model_dir / "model.json").exists()
    rerun_training(training, model_dir)


# ----------------------------------------------------------------------------------------------
# atomic_path's cleanup, in detail
# ----------------------------------------------------------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_successful_write_removes_stale_temporaries_of_its_target_only(tmp_path):
    host = plantt_io._HOST
    dead = _dead_pid()
    # untagged (older versions) and tagged by a process of this host that is gone
    stale = [".out.tsv.abcdefgh.tmp", ".out.tsv.a_1b2c3d.tmp", f".out.tsv.p{dead}-{host}.abcdefgh.tmp"]
    kept = [".out.tsv.abcdefgh.gz", ".out.tsv.abcdefghi.tmp", ".other.tsv.abcdefgh.tmp",
            ".out.tsv.notes", "out.tsv.abcdefgh.tmp", ".out.tsv.ABCDEFGH.tmp",
            # a live writer of this host (the test's parent process), another host's fresh one
            f".out.tsv.p{os.getppid()}-{host}.abcdefgh.tmp", f".out.tsv.p{dead}-elsewhere.abcdefgh.tmp"]
    for name in stale + kept:
        (tmp_path / name).write_text("x")
    write_tsv(pd.DataFrame({"a": [1, 2]}), tmp_path / "out.tsv")
    assert (tmp_path / "out.tsv").read_text() == "a\n1\n2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["out.tsv"])
    # another host's temporary goes once it is older than a day
    old = tmp_path / f".out.tsv.p{dead}-elsewhere.abcdefgh.tmp"
    os.utime(old, (time.time() - 2 * 24 * 3600,) * 2)
    assert remove_stale_temporaries(tmp_path / "out.tsv") == [old]


def test_the_temporary_of_a_live_writer_is_kept(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("slow writer")
        # Another writer of the same target finishes meanwhile: the live one's temporary stays.
        with atomic_path(target) as other:
            other.write_text("fast writer")
        assert target.read_text() == "fast writer"
        assert tmp.read_text() == "slow writer"
        assert remove_stale_temporaries(target) == []
    assert target.read_text() == "slow writer"
    assert temporaries(tmp_path) == []


def test_a_temporary_whose_writer_died_is_removed_even_when_fresh(tmp_path):
    target = tmp_path / "out.txt"
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        held = tmp_path / f".out.txt.p{writer.pid}-{plantt_io._HOST}.zzzzzzzz.tmp"
        held.write_text("partial")
        assert remove_stale_temporaries(target) == []  # its writer is alive
    finally:
        writer.kill()
        writer.wait()
    assert remove_stale_temporaries(target) == [held]
    assert not held.exists()


def test_a_file_the_writer_locks_itself_can_be_written(tmp_path):
    """Libraries such as HDF5 flock the file they create: the temporary must not be locked."""

    with atomic_path(tmp_path / "out.h5", suffix=".h5") as tmp, open(tmp, "r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write(b"data")
    assert (tmp_path / "out.h5").read_bytes() == b"data"
