#!/usr/bin/env bash
# The models issue's item 7: the `paper` preset, trained with the paper's recipe (config/config.yaml,
# train.settings), on the demo's folds, on a GPU, next to the k-mer baselines of the same folds.
#
# Here (any machine with the workflow installed), after `snakemake --cores 2 preprocess_all`:
#   bash benchmarks/paper_on_gpu.sh pack WORKDIR
# copies WORKDIR's encoded windows, fold tables and (a demo) truth table (about 20 MB) to
# benchmarks/gpu_data/ (ignored by git). Then, on the GPU machine, in the repository's root:
#   bash benchmarks/paper_on_gpu.sh run OUTDIR [FOLD ...]       (default: fold 0)
# trains one process per assay and fold, all at once on the one GPU, and writes each one's log and
# JSON lines to OUTDIR, then the summary (mean ± SD over folds) to OUTDIR/summary.txt.
# PLANTT_GPU_SECONDS (default 540) stops every process that outlasts it, so that what finished
# comes back. The package is imported from src/ (PYTHONPATH), so nothing needs installing where
# PyTorch, NumPy, pandas, SciPy, scikit-learn and PyYAML are present.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
data="$here/benchmarks/gpu_data"

case "${1:-}" in
pack)
    workdir="${2:?usage: paper_on_gpu.sh pack WORKDIR}"
    for f in results/windows/encoded.npy results/windows/encoded.genes.tsv \
             results/splits/rnaseq3p.tsv results/splits/proseq.tsv; do
        [[ -s "$workdir/$f" ]] || { echo "paper_on_gpu.sh: $workdir/$f is missing (run" \
            "'snakemake --cores 2 preprocess_all' there first)" >&2; exit 2; }
    done
    rm -rf "$data.tmp"
    mkdir -p "$data.tmp/results/windows" "$data.tmp/results/splits"
    cp "$workdir"/results/windows/encoded.{npy,genes.tsv} "$data.tmp/results/windows/"
    cp "$workdir"/results/splits/{rnaseq3p,proseq}.tsv "$data.tmp/results/splits/"
    # the simulator's truth, for the grammar's own score (the ceiling) next to the models
    if [[ -s "$workdir/resources/demo/truth.tsv" ]]; then
        mkdir -p "$data.tmp/resources/demo"
        cp "$workdir/resources/demo/truth.tsv" "$data.tmp/resources/demo/"
    fi
    rm -rf "$data"
    mv "$data.tmp" "$data"
    du -sh "$data"
    ;;
run)
    out="${2:?usage: paper_on_gpu.sh run OUTDIR [FOLD ...]}"
    shift 2
    folds=("${@:-0}")
    [[ -s "$data/results/windows/encoded.npy" ]] || {
        echo "paper_on_gpu.sh: $data holds no packed demo (run 'paper_on_gpu.sh pack' first)" >&2
        exit 2; }
    mkdir -p "$out"
    export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"; } \
        > "$out/gpu.txt" 2>&1
    limit="${PLANTT_GPU_SECONDS:-540}"
    pids=()
    for assay in rnaseq3p proseq; do
        for fold in "${folds[@]}"; do
            log="$out/$assay.fold_$fold.log"
            (
                rc=0
                timeout "$limit" python3 "$here/benchmarks/models_vs_kmer.py" --workdir "$data" \
                    --assays "$assay" --folds "$fold" --recipe "$here/config/config.yaml" \
                    --threads 2 --verbose > "$log" 2>&1 || rc=$?
                if [[ $rc == 124 ]]; then echo "stopped after $limit s (PLANTT_GPU_SECONDS)" >> "$log"; fi
                exit "$rc"
            ) &
            pids+=($!)
        done
    done
    status=0
    for pid in "${pids[@]}"; do wait "$pid" || status=1; done
    grep -h '^{' "$out"/*.fold_*.log > "$out/results.jsonl" || true
    python3 - "$out/results.jsonl" > "$out/summary.txt" <<'EOF'
import json, sys
import numpy as np
rows = [json.loads(line) for line in open(sys.argv[1])]
for assay in ("rnaseq3p", "proseq"):
    for model in dict.fromkeys(r["model"] for r in rows):
        part = [r for r in rows if r["assay"] == assay and r["model"] == model]
        if part:
            rho = np.array([r["spearman"] for r in part])
            auc = np.array([r["auroc"] for r in part])
            sd = rho.std(ddof=1) if len(part) > 1 else 0.0
            extra = ""
            if "epochs_run" in part[0]:
                extra = ", epochs " + " ".join(f"{r['best_epoch']}/{r['epochs_run']}" for r in part)
                extra += f", {part[0]['device']}"
            print(f"{assay:9s} {model:16s} Spearman {rho.mean():.3f} ± {sd:.3f}, AUROC"
                  f" {auc.mean():.3f}, {np.mean([r['seconds'] for r in part]):.0f} s per fold,"
                  f" folds {sorted(r['fold'] for r in part)}{extra}")
EOF
    cat "$out/gpu.txt" "$out/summary.txt"
    exit "$status"
    ;;
*)
    echo "usage: paper_on_gpu.sh pack WORKDIR | run OUTDIR [FOLD ...]" >&2
    exit 2
    ;;
esac
