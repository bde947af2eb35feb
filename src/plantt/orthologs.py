"""Single-copy ortholog pairs from OrthoFinder orthogroups (the paper's Section 3.1.1).

A species takes part in an orthogroup when it has **exactly one** gene in it (after protein ids are
mapped to annotation gene ids) and that gene spans at least ``min_gene_length`` bp in the annotation.
Orthogroups left with two or more such species yield every unordered pair of their genes; each pair
carries the orthogroup's label, the set of one-letter species codes kept in it (``{M,V}``), which the
splits use for stratification.

Decisions where the paper is silent:

* Protein ids are mapped to gene ids by stripping a suffix (default ``\\.\\d+$``, the transcript
  number) or extracting the first group of a regex. When the mapped id is not an annotation gene but
  the protein id itself is, the protein id is used. Annotation ids written ``gene:ID`` (Ensembl) are
  matched by ``ID`` too; the output always carries the annotation's own id.
* Several protein ids mapping to one gene (isoforms) count as one copy. An id that maps to no
  annotated gene still counts as a copy, so a species with one mapped and one unmapped member is
  multi-copy, and a species whose only member is unmapped is dropped from that orthogroup.
* A gene found in several orthogroups (possible when isoforms were clustered separately) is dropped
  from all of them: keeping it would let one gene sit in two cross-validation sets.

What ``Orthogroups.tsv`` must look like (anything else is an :class:`~plantt.io.InputError` naming
the line): a header ``Orthogroup`` followed by distinct proteome columns, each of them a proteome of
the species sheet; every row with as many tab-separated fields as the header (OrthoFinder writes
empty cells, so a short row means a truncated or hand-edited file); a non-empty orthogroup id that
no other row repeats; each protein id of a species in one orthogroup only (OrthoFinder's orthogroups
partition the proteins, so a protein in two of them means concatenated or corrupt output). A protein
id listed twice in one cell counts once; blank lines are ignored.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from plantt.annotation import read_genes
from plantt.io import InputError, PathLike, get_logger, iter_lines, read_tsv, write_tsv

log = get_logger("orthologs")

DEFAULT_SUFFIX_REGEX = r"\.\d+$"
DEFAULT_MIN_GENE_LENGTH = 1000
DEFAULT_MAX_UNMAPPED_FRACTION = 0.05
PAIR_COLUMNS = ["orthogroup", "label", "gene_a", "species_a", "gene_b", "species_b"]
ENSEMBL_GENE_PREFIX = "gene:"

# Per (orthogroup, species) outcome of the filters, in the order they are applied.
KEPT = "kept"
MULTI_COPY = "multi_copy"
UNMAPPED = "unmapped"
SHARED_GENE = "gene_in_several_orthogroups"
TOO_SHORT = "too_short"


@dataclass(frozen=True)
class SpeciesEntry:
    species: str
    code: str
    proteome: str
    annotation: str


def read_species_entries(path: PathLike) -> list[SpeciesEntry]:
    """Species sheet rows in sheet order; ``proteome`` defaults to the species id."""
    # Blank lines are kept while reading (then dropped) so that row index + 2 is the line number.
    df = read_tsv(path, required=["species", "code"], dtype=str, keep_default_na=False,
                  skip_blank_lines=False)
    df = df.fillna("").apply(lambda col: col.str.strip())
    df = df[(df != "").any(axis=1)]
    if "proteome" not in df.columns:
        df["proteome"] = ""
    if "annotation" not in df.columns:
        df["annotation"] = ""
    entries: list[SpeciesEntry] = []
    seen: dict[str, dict[str, int]] = {"species": {}, "code": {}, "proteome": {}}
    for i, row in df.iterrows():
        line = int(i) + 2
        proteome = row["proteome"] or row["species"]
        if not row["species"] or not row["code"]:
            raise InputError(path, "species and code must not be empty", line=line)
        if re.search(r"[,{}\s]", row["code"]):
            raise InputError(path, f"code {row['code']!r} must not contain commas, braces or "
                                   "spaces (it is written into labels such as {M,V})",
                             line=line, record=row["species"])
        for key, value in (("species", row["species"]), ("code", row["code"]),
                           ("proteome", proteome)):
            if value in seen[key]:
                raise InputError(path, f"duplicate {key} {value!r} (first on line "
                                       f"{seen[key][value]})", line=line, record=row["species"])
            seen[key][value] = line
        entries.append(SpeciesEntry(row["species"], row["code"], proteome, row["annotation"]))
    if not entries:
        raise InputError(path, "the species sheet has no rows")
    return entries


def format_label(codes: Sequence[str]) -> str:
    """``["V", "M"]`` -> ``"{M,V}"`` (sorted, so the label names a set)."""
    return "{" + ",".join(sorted(codes)) + "}"


def _orthogroups_header(path: PathLike) -> list[str]:
    """Header fields of ``Orthogroups.tsv``, after checking every row has as many fields.

    pandas fills missing trailing cells of a short row with empty strings, which would read a
    truncated last line as "species absent from this orthogroup"; counting tabs per line catches it.
    """
    header: list[str] | None = None
    for lineno, line in iter_lines(path):
        fields = line.rstrip("\r\n").split("\t")
        if header is None:
            header = [fields[0].lstrip("\ufeff"), *fields[1:]]  # pandas drops a BOM too
            continue
        # A whitespace-only line is blank unless it has too many fields (pandas rejects those).
        if len(fields) > len(header) or (len(fields) < len(header) and line.strip()):
            raise InputError(path, f"{len(fields)} fields, expected {len(header)} as in the header "
                                   "(tab-separated)", line=lineno)
    if header is None:
        raise InputError(path, "file is empty, expected a header line")
    if header[0] != "Orthogroup":
        raise InputError(path, f"first column must be 'Orthogroup', found {header[0]!r} "
                               "(is this OrthoFinder's Orthogroups.tsv?)", line=1)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputError(path, f"column {name!r} appears twice in the header", line=1)
        seen.add(name)
    return header


def read_orthogroups_long(path: PathLike, column_to_species: Mapping[str, str]) -> tuple[
        pd.DataFrame, int]:
    """OrthoFinder ``Orthogroups.tsv`` -> long table (orthogroup, species, protein_id).

    Returns the table and the number of orthogroups read. A proteome column absent from
    ``column_to_species`` is an error naming the column; sheet species without a column are warned
    about (they simply contribute nothing). The rules the file must follow are in the module
    docstring; breaking one is an InputError with the line.
    """
    columns = _orthogroups_header(path)[1:]
    unknown = [c for c in columns if c not in column_to_species]
    if unknown:
        raise InputError(path, f"column(s) {', '.join(map(repr, unknown))} match no proteome of "
                               f"the species sheet (known: {', '.join(column_to_species)}); set "
                               "the sheet's 'proteome' column to the OrthoFinder column names",
                         line=1)
    # QUOTE_NONE: OrthoFinder does not quote, and a stray '"' must not merge lines; blank lines
    # are kept (then dropped) so that row index + 2 stays the line number.
    table = read_tsv(path, dtype=str, keep_default_na=False, skip_blank_lines=False,
                     quoting=csv.QUOTE_NONE)
    for column, species in column_to_species.items():
        if column not in columns:
            log.warning("species %s: no column %r in %s; it contributes no orthologs",
                        species, column, path)
    # One pass in plain Python: it checks the rules row by row (so the first error is the first
    # bad line) and costs far less than a chain of pandas string operations.
    og_line: dict[str, int] = {}
    owner: dict[tuple[str, str], tuple[str, int]] = {}
    records: list[tuple[str, str, str]] = []
    species_of = [column_to_species[c] for c in columns]
    for line, row in zip(table.index + 2, table.fillna("").to_numpy(dtype=object), strict=True):
        cells = [str(c) for c in row]
        if not any(c.strip() for c in cells):
            continue  # blank line
        og = cells[0].strip()
        if not og:
            raise InputError(path, "empty orthogroup id", line=int(line))
        if og in og_line:
            raise InputError(path, f"orthogroup id appears twice (first on line {og_line[og]})",
                             line=int(line), record=og)
        og_line[og] = int(line)
        for species, cell in zip(species_of, cells[1:], strict=True):
            for protein in cell.split(","):
                protein = protein.strip()
                if not protein:
                    continue
                first = owner.get((species, protein))
                if first is None:
                    owner[(species, protein)] = (og, int(line))
                    records.append((og, species, protein))
                elif first[0] != og:  # an id repeated within one orthogroup is one member
                    raise InputError(path, f"protein id of species {species} is in orthogroup "
                                           f"{og} and in {first[0]} (line {first[1]}); "
                                           "OrthoFinder puts each protein in one orthogroup only",
                                     line=int(line), record=protein)
    long = pd.DataFrame.from_records(records, columns=["orthogroup", "species", "protein_id"])
    return long, len(og_line)


def candidate_gene_ids(protein_ids: pd.Series, suffix_regex: str | None = DEFAULT_SUFFIX_REGEX,
                       id_regex: str | None = None) -> pd.Series:
    """Apply the id rule: extract ``id_regex``'s group, else strip ``suffix_regex``.

    Ids that ``id_regex`` does not match come back as NaN (they will count as unmapped).
    """
    if id_regex is not None:
        pattern = re.compile(id_regex)
        if pattern.groups != 1:
            raise InputError(None, f"--id-regex {id_regex!r} must have exactly one group, "
                                   f"it has {pattern.groups}")
        return protein_ids.str.extract(pattern, expand=False)
    if suffix_regex:
        return protein_ids.str.replace(suffix_regex, "", regex=True)
    return protein_ids.copy()


def gene_lookup(gene_ids: Sequence[str]) -> dict[str, str]:
    """Map ids as proteomes write them to annotation ids (``gene:X`` is also found as ``X``)."""
    lookup = {g[len(ENSEMBL_GENE_PREFIX):]: g for g in gene_ids
              if g.startswith(ENSEMBL_GENE_PREFIX)}
    lookup.update({g: g for g in gene_ids})
    return lookup


def map_to_genes(long: pd.DataFrame, lookups: Mapping[str, Mapping[str, str]],
                 suffix_regex: str | None = DEFAULT_SUFFIX_REGEX,
                 id_regex: str | None = None) -> pd.DataFrame:
    """Add ``gene_id`` (annotation id or NaN) and ``copy_id`` (gene_id, else the candidate id)."""
    out = long.copy()
    candidate = candidate_gene_ids(out["protein_id"], suffix_regex, id_regex)
    gene_ids = pd.Series(pd.NA, index=out.index, dtype=object)
    for species, lookup in lookups.items():
        rows = out["species"] == species
        mapped = candidate[rows].map(lookup)
        fallback = out.loc[rows, "protein_id"].map(lookup)
        gene_ids[rows] = mapped.where(mapped.notna(), fallback)
    out["gene_id"] = gene_ids
    # Unmapped members still count as copies; isoforms of one unmapped gene count once.
    out["copy_id"] = out["gene_id"].where(out["gene_id"].notna(),
                                          "unmapped:" + candidate.fillna(out["protein_id"]))
    return out


def unmapped_report(mapped: pd.DataFrame, species_order: Sequence[str]) -> pd.DataFrame:
    """Per species: distinct protein ids, how many map to no gene, the fraction, a few examples."""
    rows = []
    for species in species_order:
        sub = mapped[mapped["species"] == species]
        ids = sub["protein_id"].drop_duplicates()
        bad = sub.loc[sub["gene_id"].isna(), "protein_id"].drop_duplicates()
        rows.append({"species": species, "protein_ids": len(ids), "unmapped": len(bad),
                     "fraction": len(bad) / len(ids) if len(ids) else 0.0,
                     "examples": ", ".join(bad.head(10))})
    return pd.DataFrame(rows)


def classify_members(mapped: pd.DataFrame, genes_by_species: Mapping[str, Mapping[str, int]],
                     min_gene_length: int) -> pd.DataFrame:
    """One row per (orthogroup, species) with the gene (if single-copy) and the filter outcome.

    ``genes_by_species`` is ``{species: {gene_id: gene span in bp}}``.
    """
    grouped = mapped.groupby(["orthogroup", "species"], sort=False)
    per = grouped.agg(copies=("copy_id", "nunique"), gene_id=("gene_id", "first")).reset_index()
    single = mapped.drop_duplicates(["orthogroup", "species", "copy_id"])
    single = single[single["gene_id"].notna()]
    shared = single.groupby(["species", "gene_id"])["orthogroup"].transform("nunique") > 1
    shared_keys = pd.MultiIndex.from_frame(single.loc[shared, ["species", "gene_id"]])
    is_shared = pd.MultiIndex.from_frame(per[["species", "gene_id"]]).isin(shared_keys)
    lengths = pd.Series(float("nan"), index=per.index)
    for species, group in per.groupby("species", sort=False):
        lengths[group.index] = group["gene_id"].map(genes_by_species.get(species, {}))
    status = pd.Series(KEPT, index=per.index, dtype=object)
    status[lengths.fillna(0).to_numpy() < min_gene_length] = TOO_SHORT
    status[is_shared] = SHARED_GENE
    status[per["gene_id"].isna().to_numpy()] = UNMAPPED
    status[(per["copies"] > 1).to_numpy()] = MULTI_COPY
    per["status"] = status
    per["gene_length"] = lengths
    return per


def build_pairs(members: pd.DataFrame, species_order: Sequence[str],
                codes: Mapping[str, str]) -> pd.DataFrame:
    """Every unordered pair of kept members within each orthogroup, in species-sheet order."""
    rank = {s: i for i, s in enumerate(species_order)}
    kept = members[members["status"] == KEPT]
    records = []
    for orthogroup, group in kept.groupby("orthogroup", sort=False):
        if len(group) < 2:
            continue
        ordered = sorted(zip(group["species"], group["gene_id"], strict=True),
                         key=lambda sg: rank[sg[0]])
        label = format_label([codes[s] for s, _ in ordered])
        for (sp_a, gene_a), (sp_b, gene_b) in itertools.combinations(ordered, 2):
            records.append((orthogroup, label, gene_a, sp_a, gene_b, sp_b))
    return pd.DataFrame.from_records(records, columns=PAIR_COLUMNS)


def summarize(n_orthogroups: int, members: pd.DataFrame, unmapped: pd.DataFrame,
              pairs: pd.DataFrame, species_order: Sequence[str]) -> pd.DataFrame:
    """Counts per step as a long table: step, species, label, count (``all`` = not split)."""
    rows = [("orthogroups_read", "all", "all", n_orthogroups)]
    for species in species_order:
        sub = members[members["species"] == species]
        rep = unmapped[unmapped["species"] == species].iloc[0]
        rows.append(("orthogroups_with_species", species, "all", len(sub)))
        rows.append(("protein_ids", species, "all", int(rep["protein_ids"])))
        rows.append(("unmapped_protein_ids", species, "all", int(rep["unmapped"])))
        for status in (MULTI_COPY, UNMAPPED, SHARED_GENE, TOO_SHORT, KEPT):
            rows.append((f"{status}", species, "all", int((sub["status"] == status).sum())))
    kept = members[members["status"] == KEPT].groupby("orthogroup").size()
    rows.append(("orthogroups_fewer_than_2_species", "all", "all",
                 n_orthogroups - int((kept >= 2).sum())))
    rows.append(("orthogroups_used", "all", "all", int((kept >= 2).sum())))
    for label, count in pairs.groupby("label").size().items():
        rows.append(("pairs", "all", str(label), int(count)))
    rows.append(("pairs", "all", "all", len(pairs)))
    return pd.DataFrame(rows, columns=["step", "species", "label", "count"])


def check_unmapped(unmapped: pd.DataFrame, max_fraction: float, path: PathLike) -> None:
    """Log unmapped ids per species; error when a species exceeds ``max_fraction``."""
    for rep in unmapped.itertuples():
        if rep.unmapped:
            log.warning("species %s: %d of %d protein ids map to no annotated gene (%.1f%%), "
                        "e.g. %s", rep.species, rep.unmapped, rep.protein_ids,
                        100 * rep.fraction, rep.examples)
    over = unmapped[unmapped["fraction"] > max_fraction]
    if len(over):
        detail = "; ".join(f"{r.species}: {r.unmapped}/{r.protein_ids} unmapped, e.g. {r.examples}"
                           for r in over.itertuples())
        raise InputError(path, f"more than {max_fraction:.1%} of the protein ids map to no "
                               f"annotated gene ({detail}); fix --id-suffix-regex/--id-regex or "
                               "the species sheet's annotation")


def find_ortholog_pairs(orthogroups: PathLike, species: Sequence[SpeciesEntry],
                        genes_by_species: Mapping[str, Mapping[str, int]],
                        suffix_regex: str | None = DEFAULT_SUFFIX_REGEX,
                        id_regex: str | None = None,
                        min_gene_length: int = DEFAULT_MIN_GENE_LENGTH,
                        max_unmapped_fraction: float = DEFAULT_MAX_UNMAPPED_FRACTION,
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole step on in-memory gene lengths ``{species: {gene_id: length}}``.

    Returns (pairs, summary).
    """
    order = [s.species for s in species]
    long, n_read = read_orthogroups_long(orthogroups, {s.proteome: s.species for s in species})
    lookups = {sp: gene_lookup(list(genes_by_species[sp])) for sp in order}
    mapped = map_to_genes(long, lookups, suffix_regex, id_regex)
    unmapped = unmapped_report(mapped, order)
    check_unmapped(unmapped, max_unmapped_fraction, orthogroups)
    members = classify_members(mapped, genes_by_species, min_gene_length)
    pairs = build_pairs(members, order, {s.species: s.code for s in species})
    summary = summarize(n_read, members, unmapped, pairs, order)
    for sp in order:
        sub = members[members["species"] == sp]["status"].value_counts()
        log.info("species %s: %d orthogroups, kept %d, multi-copy %d, too short %d, unmapped %d, "
                 "gene in several orthogroups %d", sp, int(sub.sum()), sub.get(KEPT, 0),
                 sub.get(MULTI_COPY, 0), sub.get(TOO_SHORT, 0), sub.get(UNMAPPED, 0),
                 sub.get(SHARED_GENE, 0))
    log.info("%d orthogroups read, %d ortholog pairs written", n_read, len(pairs))
    return pairs, summary


def parse_assignments(items: Sequence[str] | None, option: str) -> dict[str, str]:
    """``["a=x", "b=y"]`` -> ``{"a": "x", "b": "y"}`` with a clear error for malformed items."""
    result: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InputError(None, f"{option} expects SPECIES=PATH, got {item!r}")
        result[key] = value
    return result


def run(args: argparse.Namespace) -> int:
    species = read_species_entries(args.species_sheet)
    overrides = parse_assignments(args.annotation, "--annotation")
    unknown = sorted(set(overrides) - {s.species for s in species})
    if unknown:
        raise InputError(args.species_sheet, f"--annotation names species not in the sheet: "
                                             f"{', '.join(unknown)}")
    genes_by_species = {}
    for entry in species:
        path = overrides.get(entry.species, entry.annotation)
        if not path:
            raise InputError(args.species_sheet, "no annotation for this species (column "
                                                 "'annotation' or --annotation)",
                             record=entry.species)
        genes_by_species[entry.species] = {g.gene_id: g.length
                                           for g in read_genes(Path(path)).values()}
    pairs, summary = find_ortholog_pairs(
        args.orthogroups, species, genes_by_species,
        suffix_regex=None if args.id_regex else args.id_suffix_regex, id_regex=args.id_regex,
        min_gene_length=args.min_gene_length, max_unmapped_fraction=args.max_unmapped_fraction)
    write_tsv(pairs, args.out)
    if args.summary:
        write_tsv(summary, args.summary)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "orthologs", help="single-copy ortholog pairs from OrthoFinder orthogroups",
        description="Keep, in each orthogroup, the species with exactly one gene of at least "
                    "--min-gene-length bp and write every unordered pair with its species-set "
                    "label.")
    parser.add_argument("--orthogroups", required=True, help="OrthoFinder Orthogroups.tsv")
    parser.add_argument("--species-sheet", required=True, help="species sheet (TSV)")
    parser.add_argument("--out", required=True, help="pairs TSV to write")
    ids = parser.add_mutually_exclusive_group()
    ids.add_argument("--id-suffix-regex", default=DEFAULT_SUFFIX_REGEX,
                     help="suffix stripped from protein ids to get gene ids ('' keeps ids as "
                          "they are; default %(default)s)")
    ids.add_argument("--id-regex", default=None,
                     help="regex with one group extracting the gene id from a protein id")
    parser.add_argument("--annotation", action="append", metavar="SPECIES=PATH",
                        help="annotation for a species, overriding the sheet (repeatable)")
    parser.add_argument("--min-gene-length", type=int, default=DEFAULT_MIN_GENE_LENGTH,
                        help="minimum gene span in bp (default %(default)s)")
    parser.add_argument("--max-unmapped-fraction", type=float,
                        default=DEFAULT_MAX_UNMAPPED_FRACTION,
                        help="error when a species has more unmapped protein ids "
                             "(default %(default)s)")
    parser.add_argument("--summary", help="counts per step (TSV)")
    parser.set_defaults(func=run)
