"""Run every benchmark and write ``docs/performance.md``: ``python -m benchmarks``.

Every figure is SoundSentry ("ours") against the seed's inference path ("seed", see
:mod:`benchmarks.seed`) measured in the same invocation on the same machine and the same
real clips, repeated and interleaved so that load from other users hits both sides alike;
the report gives medians with the range of the repeats.

Default sizes finish in a few minutes on 2 cores; ``--full`` adds 10,000 clips and a 1-hour
recording. ``--skip-seed`` drops the baseline (it needs the ``[train]`` extra: TensorFlow,
librosa, scikit-learn; without them it is skipped by itself), ``--skip-install`` the
install-footprint benchmark (it builds fresh virtual environments).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from . import harness
from .harness import REPO_ROOT, child_env, run_process

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "mimii"
#: The log-mel bundle of before the EdgeL3 views bundles (a test fixture), for the LOF levers.
LOGMEL_BUNDLE = REPO_ROOT / "tests" / "data" / "bundles" / "fan-logmel"
SECTIONS = ("latency", "throughput", "stages", "levers", "blas", "scaling", "long", "install")
# Keys of the raw results each section fills.
MEASURED = ("latency", "throughput", "stages_paired", "stages", "levers", "blas", "scaling", "long", "install")


def find_clips(data: Path, machine_type: str) -> tuple[list[str], list[str], str]:
    """Real clips to score and normal clips to fit the seed's LOF on, and where they came from."""
    table = data / "clips.csv"
    if table.is_file():
        with open(table, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["machine_type"] == machine_type]
        clips = sorted(str(data / r["file"]) for r in rows)
        normals = sorted(str(data / r["file"]) for r in rows if r["label"] == "normal")
        return clips, normals, f"{len(clips)} real MIMII-family {machine_type} clips from {data}"
    clips = sorted(str(p) for d in ("examples", "tests/data") for p in (REPO_ROOT / d).glob("*.flac"))
    return clips, clips, f"{len(clips)} real clips shipped in examples/ and tests/data/ ({data} not found)"


def ours_cli(paths: list[str], *extra: str) -> list[str]:
    return [sys.executable, "-m", "soundsentry", "score", *paths, "--format", "csv", *extra]


def seed_cli(model_dir: Path, paths: list[str], *extra: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.seed", "score", "--model-dir", str(model_dir), *paths, *extra]


def checked(result, what: str):
    # 0: all normal, 1: some abnormal; anything else means the run did not do its job.
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result


def per(values: list[float], n: int, scale: float = 1000.0) -> list[float]:
    return [v / n * scale for v in values]


def bench_latency(clip: str, seed_dir: Path | None, repeats: int, env: dict) -> dict:
    """One file, process start to printed verdict, interleaved ours/seed."""
    out: dict = {"ours_s": [], "ours_mb": [], "seed_s": [], "seed_mb": []}
    for _ in range(repeats):
        r = checked(run_process(ours_cli([clip]), env=env, cwd=REPO_ROOT), "soundsentry score")
        out["ours_s"].append(r.seconds)
        out["ours_mb"].append(r.peak_mb)
        if seed_dir:
            r = checked(run_process(seed_cli(seed_dir, [clip]), env=env, cwd=REPO_ROOT), "seed score")
            out["seed_s"].append(r.seconds)
            out["seed_mb"].append(r.peak_mb)
    return out


def bench_throughput(folder: Path, n: int, seed_dir: Path | None, list_file: Path, repeats: int, env: dict) -> dict:
    """A folder end to end (process start included) for ours as the CLI runs by default (files in
    threads), one file after the other (``--threads 1``) and with 2 worker processes, and for the
    seed's CLI; and the seed's warm in-process loop (its best case) with Keras and with TFLite."""
    out: dict = {"n": n}
    for key in ("ours_s", "ours_mb", "ours_threads1_s", "ours_threads1_mb", "ours_jobs2_s", "ours_jobs2_mb",
                "seed_cli_s", "seed_cli_mb"):
        out[key] = []
    for i in range(repeats):
        r = checked(run_process(ours_cli([str(folder)]), env=env, cwd=REPO_ROOT), "soundsentry score")
        out["ours_s"].append(r.seconds)
        out["ours_mb"].append(r.peak_mb)
        r = checked(run_process(ours_cli([str(folder)], "--threads", "1"), env=env, cwd=REPO_ROOT), "score --threads 1")
        out["ours_threads1_s"].append(r.seconds)
        out["ours_threads1_mb"].append(r.peak_mb)
        r = checked(run_process(ours_cli([str(folder)], "--jobs", "2"), env=env, cwd=REPO_ROOT), "score --jobs 2")
        out["ours_jobs2_s"].append(r.seconds)
        out["ours_jobs2_mb"].append(r.peak_mb)
        if seed_dir and i < max(1, repeats // 2):  # the seed's CLI is slow; fewer runs of it
            r = checked(run_process(seed_cli(seed_dir, [str(folder)]), env=env, cwd=REPO_ROOT), "seed score")
            out["seed_cli_s"].append(r.seconds)
            out["seed_cli_mb"].append(r.peak_mb)
    if seed_dir:
        for runtime in ("keras", "tflite"):
            r = run_process(
                [sys.executable, "-m", "benchmarks.seed", "bench", "--model-dir", str(seed_dir), "--runtime", runtime,
                 "--repeats", str(repeats), str(list_file)],
                env=env, cwd=REPO_ROOT,
            )
            if r.returncode != 0:
                raise RuntimeError(f"seed bench ({runtime}) failed:\n{r.stderr[-2000:]}")
            out[f"seed_{runtime}"] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def bench_blas(folder: Path, n: int, repeats: int, env: dict) -> dict:
    """Lever: ``soundsentry score DIR`` with NumPy's default BLAS threads vs ``OPENBLAS_NUM_THREADS=1``, interleaved."""
    out: dict = {"n": n, "default_s": [], "one_thread_s": []}
    one = {**env, "OPENBLAS_NUM_THREADS": "1"}
    # The CLI now asks for one BLAS thread itself, so the baseline names NumPy's own default
    # (one OpenBLAS thread per core) explicitly.
    base = {**env, "OPENBLAS_NUM_THREADS": str(os.cpu_count() or 1)}
    for _ in range(repeats):
        out["default_s"].append(checked(run_process(ours_cli([str(folder)]), env=base, cwd=REPO_ROOT), "score").seconds)
        out["one_thread_s"].append(checked(run_process(ours_cli([str(folder)]), env=one, cwd=REPO_ROOT), "score").seconds)
    return out


def bench_scaling(clips: list[str], sizes: list[int], seed_dir: Path | None, seed_max: int, tmp: Path, env: dict,
                  repeats: int, *, into: dict, checkpoint) -> dict:
    out = into
    for n in sizes:
        folder = harness.link_folder(clips, n, tmp / f"scale_{n}")
        reps = repeats if n <= 1000 else 1
        row: dict = {"ours_s": [], "ours_mb": [], "seed_s": [], "seed_mb": []}
        for _ in range(reps):
            r = checked(run_process(ours_cli([str(folder)], "-o", str(tmp / f"out_{n}.csv")), env=env), "score")
            row["ours_s"].append(r.seconds)
            row["ours_mb"].append(r.peak_mb)
        if seed_dir and n <= seed_max:
            r = checked(run_process(seed_cli(seed_dir, [str(folder)]), env=env, cwd=REPO_ROOT), "seed score")
            row["seed_s"].append(r.seconds)
            row["seed_mb"].append(r.peak_mb)
        out[n] = row
        checkpoint(f"scaling: {n} clips done")
    return out


def bench_long(clips: list[str], lengths: list[float], seed_dir: Path | None, tmp: Path, env: dict,
               repeats: int, *, into: dict, checkpoint) -> dict:
    out = into
    for seconds in lengths:
        path = harness.write_long_recording(clips, seconds, tmp / f"long_{int(seconds)}s.flac")
        row: dict = {"ours_s": [], "ours_mb": [], "seed_s": [], "seed_mb": []}
        reps = repeats if seconds <= 600 else 1
        for _ in range(reps):
            r = checked(run_process(ours_cli([str(path)]), env=env, cwd=REPO_ROOT), "score long")
            row["ours_s"].append(r.seconds)
            row["ours_mb"].append(r.peak_mb)
        if seed_dir:
            r = checked(run_process(seed_cli(seed_dir, [str(path)], "--long"), env=env, cwd=REPO_ROOT), "seed long")
            row["seed_s"].append(r.seconds)
            row["seed_mb"].append(r.peak_mb)
        path.unlink()
        out[seconds] = row
        checkpoint(f"long: {seconds:g} s done")
    return out


def bench_install(tmp: Path) -> dict:
    """site-packages of a fresh venv: ``pip install .`` (our runtime) vs the seed's stack."""
    out = {}
    specs = {
        "ours": [str(REPO_ROOT)],
        "seed": ["tensorflow", "librosa", "scikit-learn"],
    }
    for name, spec in specs.items():
        venv = tmp / f"venv_{name}"
        r = run_process([sys.executable, "-m", "venv", str(venv)])
        if r.returncode:
            raise RuntimeError(r.stderr)
        py = venv / "bin" / "python"
        site = Path(run_process([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
        empty = harness.dir_size_mb(site)
        t0 = time.perf_counter()
        r = run_process([str(py), "-m", "pip", "install", "-q", "--no-compile", *spec])
        if r.returncode:
            raise RuntimeError(f"pip install {spec} failed:\n{r.stderr[-2000:]}")
        freeze = run_process([str(py), "-m", "pip", "list", "--format=freeze"]).stdout.split()
        out[name] = {
            "spec": spec,
            "site_packages_mb": harness.dir_size_mb(site) - empty,
            "packages": len(freeze),
            "install_s": time.perf_counter() - t0,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with clips.csv (default: %(default)s)")
    parser.add_argument("--machine-type", default="fan")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each measurement (default 5)")
    parser.add_argument("--clips", type=int, default=124, help="folder size for batch throughput (default 124)")
    parser.add_argument("--scaling", default="100,1000", help="folder sizes for scaling (default 100,1000)")
    parser.add_argument("--long", default="180,600", help="long recording lengths in s (default 180,600)")
    parser.add_argument("--full", action="store_true", help="scaling 100,1000,10000 and long 600,3600")
    parser.add_argument("--seed-scaling-max", type=int, default=100, help="largest folder the seed also scores")
    parser.add_argument("--skip-seed", action="store_true", help="no baseline (it needs the [train] extra)")
    parser.add_argument("--skip-install", action="store_true", help="no install-footprint benchmark")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny sizes, 1 repeat, no scaling/long")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "performance.md")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma-separated subset of %(default)s")
    parser.add_argument("--merge", type=Path, metavar="JSON",
                        help="start from these raw results and replace only the sections measured now")
    parser.add_argument("--render", type=Path, metavar="JSON", help="only rewrite --out from saved raw results")
    parser.add_argument("--combine", type=Path, nargs="+", metavar="JSON",
                        help="merge raw results of several runs (later runs' sections win) into --out")
    args = parser.parse_args(argv)
    if args.combine:
        base = json.loads(args.combine[0].read_text())
        runs = base.pop("runs", None) or [{"command": base["command"], "started": base["started"],
                                           "sections": [k for k in MEASURED if k in base]}]
        for extra in args.combine[1:]:
            more = json.loads(extra.read_text())
            got = [k for k in MEASURED if k in more]
            for k in got:
                # Folder sizes and recording lengths measured in separate runs add up.
                if k in ("scaling", "long") and isinstance(base.get(k), dict):
                    base[k].update(more[k])
                else:
                    base[k] = more[k]
            runs.append({"command": more["command"], "started": more["started"], "sections": got})
        base["runs"] = runs
        args.out.with_suffix(".json").write_text(json.dumps(base, indent=1, default=str))
        args.render = args.out.with_suffix(".json")
    if args.render:
        from .report import render

        args.out.write_text(render(json.loads(args.render.read_text())))
        return 0
    if args.full:
        args.scaling, args.long = "100,1000,10000", "600,3600"
    if args.quick:
        args.repeats, args.clips, args.scaling, args.long = 1, min(args.clips, 8), "", ""
    sections = {x for x in args.sections.split(",") if x}
    if sections - set(SECTIONS):
        parser.error(f"unknown sections {sorted(sections - set(SECTIONS))}")
    if args.skip_install:
        sections.discard("install")
    sizes = [int(s) for s in args.scaling.split(",") if s]
    lengths = [float(s) for s in args.long.split(",") if s]

    from . import seed as seed_mod

    skip_reason = "--skip-seed" if args.skip_seed else seed_mod.seed_available()
    clips, normals, source = find_clips(args.data, args.machine_type)
    if args.quick:
        clips = clips[: args.clips]
    env = child_env()
    started = time.time()
    command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
    results: dict = json.loads(args.merge.read_text()) if args.merge else {}
    if args.merge:
        # Several invocations in one report: each says which sections it measured.
        results.setdefault("runs", [{"command": results["command"], "started": results["started"],
                                     "sections": [k for k in SECTIONS if k in results or k == "levers"]}])
        results["runs"].append({"command": command, "started": time.strftime("%Y-%m-%d %H:%M UTC"),
                                "sections": sorted(sections)})
    else:
        results.update({
            "command": command,
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "machine": harness.machine_description(),
            "clips": source,
            "n_clips": len(clips),
            "n_multichannel": harness.count_multichannel(clips),
            "repeats": args.repeats,
            "seed_skipped": skip_reason,
        })

    partial = args.out.with_suffix(".partial.json")

    def log(msg):
        # What has been measured so far survives a crash or a kill: the raw results, rendered with --render.
        args.out.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(results, indent=1, default=str))
        print(f"[{time.time() - started:6.0f} s] {msg}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="ssbench_") as tmpname:
        tmp = Path(tmpname)
        list_file = tmp / "clips.txt"
        list_file.write_text("\n".join(clips))
        seed_dir = None
        if not skip_reason:
            log("building the seed model (random weights, LOF fitted on normal clips)")
            seed_dir = tmp / "seed_model"
            r = run_process([sys.executable, "-m", "benchmarks.seed", "build", "--model-dir", str(seed_dir),
                             *normals[:20]], env=env, cwd=REPO_ROOT)
            if r.returncode:
                raise RuntimeError(f"building the seed model failed:\n{r.stderr[-2000:]}")
            results["seed_model"] = json.loads((seed_dir / "seed.json").read_text())

        if "latency" in sections:
            log("one-file latency")
            results["latency"] = bench_latency(clips[0], seed_dir, args.repeats, env)
        if "throughput" in sections:
            log(f"batch throughput ({args.clips} clips)")
            folder = harness.link_folder(clips, args.clips, tmp / "throughput")
            results["throughput"] = bench_throughput(folder, args.clips, seed_dir, list_file, args.repeats, env)
        if "stages" in sections and seed_dir:
            log("per-clip stages, ours and seed in one process, interleaved")
            results["stages_paired"] = {}
            for runtime in ("tflite", "keras"):
                r = run_process(
                    [sys.executable, "-m", "benchmarks.seed", "bench", "--with-ours", "--model-dir", str(seed_dir),
                     "--runtime", runtime, "--repeats", str(args.repeats), str(list_file)],
                    env=env, cwd=REPO_ROOT,
                )
                if r.returncode != 0:
                    raise RuntimeError(f"seed bench ({runtime}) failed:\n{r.stderr[-2000:]}")
                results["stages_paired"][runtime] = json.loads(r.stdout.strip().splitlines()[-1])
        if "levers" in sections:
            log("stage split and levers (in process)")
            import soundsentry

            from . import ours

            model = soundsentry.load_model("fan")
            results["stages"] = ours.stage_split(model, clips, args.repeats)
            results["levers"] = {
                "encoder": ours.encoder_levers(model, clips, args.repeats, tmp),
                # The LOF levers need a bundle with LOF: the shipped views bundles have none, the log-mel fixture has.
                "lof": ours.lof_levers(
                    model if "lof" in model.detectors else soundsentry.load_model(LOGMEL_BUNDLE), clips, args.repeats
                ),
                "decode": ours.decode_levers(model, clips, args.repeats),
            }
        if "blas" in sections:
            log(f"BLAS threads lever ({args.clips} clips)")
            folder = tmp / "throughput"
            if not folder.exists():
                harness.link_folder(clips, args.clips, folder)
            results["blas"] = bench_blas(folder, args.clips, args.repeats, env)
        if sizes and "scaling" in sections:
            results["scaling"] = {}
            log(f"scaling {sizes}")
            bench_scaling(clips, sizes, seed_dir, args.seed_scaling_max, tmp, env, args.repeats,
                          into=results["scaling"], checkpoint=log)
        if lengths and "long" in sections:
            results["long"] = {}
            log(f"long recordings {lengths}")
            bench_long(clips, lengths, seed_dir, tmp, env, min(args.repeats, 3), into=results["long"], checkpoint=log)
        if "install" in sections:
            log("install footprint (fresh virtual environments)")
            results["install"] = bench_install(tmp)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M UTC")
    results["load_average_end"] = os.getloadavg()
    results["minutes"] = (time.time() - started) / 60

    from .report import render

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    args.out.write_text(render(results))
    partial.unlink(missing_ok=True)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
