"""`--runtime auto` and a model folder's own int8 exports, `onnx-int8/` and `openvino-int8/` (issue 14): chosen
only on a CPU without AMX, for the very weights they were made from, when the check kept >= 99.5% of PyTorch
fp32's labels, the one measured faster on the CPU's kind first; the run's manifest and summary say which path ran
and why.

The model is the random tiny one with a decisive head, its int8 export real (`kobert export`'s code, the check
run on real reviews). A random encoder's int8 graph keeps only ~80% of the labels (its reviews differ little, and
the tiny model's few 7-bit weights add much noise), so it is below the floor: the positive path lowers the floor
in-process to see the choice made end to end.
"""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from kobert_ops import cpu_facts, cpu_path
from kobert_ops.onnx_export import export_onnx
from kobert_ops.openvino_export import export_openvino
from pipelines.cli import main
from tests.onnx_models import decisive_classifier


@pytest.fixture(scope="module")
def with_export(tmp_path_factory, tiny_model_dir, real_reviews):
    """A PyTorch folder holding its own int8 export in onnx-int8/ (exported below the floor: min_agreement 0)."""
    texts = [text for text in real_reviews if text and text.strip()]
    folder = decisive_classifier(tiny_model_dir, texts[:300], tmp_path_factory.mktemp("cpu-path") / "model")
    record = export_onnx(folder, folder / cpu_path.INT8_EXPORT, texts=texts[300:700], quantize="int8",
                         num_threads=1, min_agreement=0)
    return folder, record


def test_an_int8_export_below_the_floor_is_not_chosen(with_export, monkeypatch):
    folder, record = with_export
    monkeypatch.setattr(cpu_facts, "has_amx", lambda: False)
    agreement = record["check"]["label_agreement"]
    assert agreement < cpu_path.MIN_INT8_AGREEMENT  # the premise: a random encoder's int8 graph
    export, why = cpu_path.int8_export_for(str(folder), folder, "cpu", "auto")
    assert export is None and why == (f"onnx-int8/ kept {agreement:.2%} of PyTorch fp32's labels in its check, "
                                      f"below 99.5%")


def test_the_export_is_not_chosen_on_amx_for_another_precision_or_device_or_other_weights(
        with_export, tiny_model_dir, tmp_path, monkeypatch):
    folder, _ = with_export
    monkeypatch.setattr(cpu_path, "MIN_INT8_AGREEMENT", 0.5)
    monkeypatch.setattr(cpu_facts, "has_amx", lambda: True)
    assert cpu_path.int8_export_for(str(folder), folder, "cpu", "auto")[1].startswith("this CPU has AMX")
    monkeypatch.setattr(cpu_facts, "has_amx", lambda: False)
    assert cpu_path.int8_export_for(str(folder), folder, "cpu", "fp32") == (None, "--precision fp32")
    assert cpu_path.int8_export_for(str(folder), folder, "cuda", "auto") == (None, "the run is on cuda")
    retrained = tmp_path / "retrained"  # the folder trained again after its export: other weights, old graph
    shutil.copytree(folder, retrained)
    shutil.copy(tiny_model_dir / "model.safetensors", retrained / "model.safetensors")
    export, why = cpu_path.int8_export_for(str(retrained), retrained, "cpu", "auto")
    assert export is None and "exported from other weights" in why
    assert cpu_path.int8_export_for(str(tiny_model_dir), tiny_model_dir, "cpu", "auto") == (
        None, "no openvino-int8/ or onnx-int8/ export in the model folder")


def test_auto_labels_with_the_folders_int8_export_where_it_is_the_fast_path(with_export, nsmc_path, tmp_path,
                                                                              monkeypatch, capsys):
    folder, record = with_export
    monkeypatch.setattr(cpu_path, "MIN_INT8_AGREEMENT", 0.5)  # see the module docstring
    monkeypatch.setattr(cpu_facts, "has_amx", lambda: False)
    source = tmp_path / "reviews.parquet"
    pq.write_table(pq.read_table(nsmc_path).slice(1000, 300), source)
    runs = {}
    for name, extra in [("auto", []), ("torch", ["--runtime", "torch"])]:
        assert main(["label", "--model", str(folder), "--input", str(source), "--output", str(tmp_path / name),
                     "--engine", "local", "--threads-per-actor", "1", "--no-progress", *extra]) == 0
        runs[name] = json.loads((tmp_path / name / "_SUCCESS").read_text())["runs"][0]
    [path] = [actor["path"] for actor in runs["auto"]["actors"]]
    assert path["runtime"] == "onnx" and path["precision"] == "int8", path
    assert path["why"].startswith(f"auto: no AMX on this CPU, and the model's onnx-int8/ export kept "
                                  f"{record['check']['label_agreement']:.2%}")
    assert "  path        onnx int8 on cpu (auto: no AMX on this CPU" in capsys.readouterr().out
    [path] = [actor["path"] for actor in runs["torch"]["actors"]]
    assert path["runtime"] == "torch"  # a forced runtime is what runs


def test_a_pinned_uri_models_export_is_fetched_beside_it_and_a_missing_one_is_no_error(
        with_export, tiny_model_dir, tmp_path, monkeypatch):
    """On a cluster actors get `URI#sha256=<digest of the weights' folder>`; that pin is not the subfolder's
    (the first try appended onnx-int8/ to the pinned reference and failed every actor with ModelChangedError)."""
    from kobert_ops import hub, model_store

    folder, _ = with_export
    monkeypatch.setenv("KOBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_facts, "has_amx", lambda: False)
    monkeypatch.setattr(cpu_path, "MIN_INT8_AGREEMENT", 0.5)
    for source, found in [(folder, True), (tiny_model_dir, False)]:
        pinned = model_store.pin(f"file://{source}", hub.MODEL_FILES)
        export, why = cpu_path.int8_export_for(pinned, hub.resolve(pinned, allow_patterns=hub.MODEL_FILES),
                                               "cpu", "auto")
        assert (export is not None) == found, why
        if found:
            assert (export / "model.onnx").read_bytes() == (folder / "onnx-int8" / "model.onnx").read_bytes()


def test_an_export_label_run_never_imports_torch_or_transformers(tmp_path, tiny_model_dir, real_reviews, nsmc_path):
    """Start-up of a scheduled job (issue 14): labeling with a model folder's own int8 export, or with an export
    folder (ONNX or OpenVINO), the local engine imports neither torch, transformers nor Ray (measured on the Zen 4: a 10-row run of
    the base preset went from 6.3 s to 1.9 s wall). The fresh tiny model gives nearly every review one label,
    so its int8 export passes the check and `auto` chooses it."""
    import subprocess
    import sys

    if cpu_facts.has_amx():
        pytest.skip("on an AMX CPU `auto` keeps PyTorch (bf16): the export is not chosen there")
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    texts = [text for text in real_reviews if text and text.strip()]
    export_onnx(model, model / cpu_path.INT8_EXPORT, texts=texts[:200], quantize="int8", num_threads=1)
    export_openvino(tiny_model_dir, tmp_path / "openvino-int8", texts=texts[:100], calibration_texts=texts[200:300],
                    num_threads=1)
    pq.write_table(pq.read_table(nsmc_path).slice(0, 50), tmp_path / "reviews.parquet")
    for name, folder, path in [("own export", model, "onnx int8 on cpu"),
                               ("export folder", model / cpu_path.INT8_EXPORT, "onnx int8 on cpu"),
                               ("openvino export folder", tmp_path / "openvino-int8", "openvino int8, ")]:
        script = ("import sys\nfrom pipelines.cli import main\n"
                  f"code = main(['label', '--model', {str(folder)!r}, '--input', {str(tmp_path / 'reviews.parquet')!r}, "
                  f"'--output', {str(tmp_path / name)!r}, '--no-progress', '--threads-per-actor', '1'])\n"
                  "print(code, sorted(m for m in ('torch', 'transformers', 'ray') if m in sys.modules))\n")
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
        assert done.stdout.strip().splitlines()[-1] == "0 []", name + done.stdout[-2000:] + done.stderr[-2000:]
        assert path in done.stdout, name


@pytest.fixture(scope="module")
def with_both_exports(tmp_path_factory, with_export, real_reviews):
    """The folder of `with_export` with its OpenVINO int8 export beside the ONNX one (floor 0, as above)."""
    from kobert_ops.openvino_export import export_openvino

    source, _ = with_export
    folder = tmp_path_factory.mktemp("both") / "model"
    shutil.copytree(source, folder)
    texts = [text for text in real_reviews if text and text.strip()]
    record = export_openvino(folder, folder / cpu_path.INT8_EXPORTS["openvino"], texts=texts[300:500],
                             calibration_texts=texts[700:900], quantize="int8", num_threads=1, min_agreement=0)
    return folder, record


@pytest.mark.parametrize("flags, first", [({"avx2", "avx512_vnni"}, "openvino"), ({"avx2", "avx_vnni"}, "openvino"),
                                          ({"avx2"}, "onnx")])
def test_auto_tries_the_export_measured_faster_on_this_kind_of_cpu_first(with_both_exports, monkeypatch, flags,
                                                                          first):
    """OpenVINO's static int8 where the CPU has VNNI (measured 1.3× ONNX Runtime's int8 on a Zen 4), ONNX
    Runtime's int8 on an AVX2-only CPU (measured there; OpenVINO not)."""
    folder, _ = with_both_exports
    monkeypatch.setattr(cpu_facts, "cpu_flags", lambda: flags)
    monkeypatch.setattr(cpu_path, "MIN_INT8_AGREEMENT", 0.5)
    export, why = cpu_path.int8_export_for(str(folder), folder, "cpu", "auto")
    assert export == folder / cpu_path.INT8_EXPORTS[first]
    assert why.endswith(cpu_path.FAST_PATH[first]) and f"the model's {cpu_path.INT8_EXPORTS[first]}/ export" in why
    assert cpu_path.may_use_export(str(folder), "auto", "auto", "cpu") == first
    assert cpu_path.may_use_export(str(folder / "openvino-int8"), "auto", "auto", "cpu") == "openvino"
    assert cpu_path.may_use_export(str(folder), "torch", "auto", "cpu") == ""


def test_an_export_that_fails_a_check_gives_way_to_the_other(with_both_exports, tmp_path, monkeypatch):
    folder, _ = with_both_exports
    monkeypatch.setattr(cpu_facts, "cpu_flags", lambda: {"avx512_vnni"})
    monkeypatch.setattr(cpu_path, "MIN_INT8_AGREEMENT", 0.5)
    stale = tmp_path / "model"  # its OpenVINO export made from other weights than the folder holds now
    shutil.copytree(folder, stale)
    record = json.loads((stale / "openvino-int8" / "export.json").read_text())
    (stale / "openvino-int8" / "export.json").write_text(json.dumps({**record, "source_weights_sha256": "0" * 64}))
    export, why = cpu_path.int8_export_for(str(stale), stale, "cpu", "auto")
    assert export == stale / "onnx-int8" and why.endswith(cpu_path.FAST_PATH["onnx"])
    monkeypatch.setattr(cpu_path, "MIN_INT8_AGREEMENT", 1.0)  # neither passes: both reasons are given
    export, why = cpu_path.int8_export_for(str(stale), stale, "cpu", "auto")
    assert export is None
    assert why.startswith("openvino-int8/ was exported from other weights") and "; onnx-int8/ kept " in why


def test_auto_labels_with_the_openvino_export_on_a_vnni_cpu(with_both_exports, nsmc_path, tmp_path, monkeypatch,
                                                            capsys):
    folder, record = with_both_exports
    monkeypatch.setenv("KOBERT_PATH_TRIAL", "off")  # the flags' order (the measured choice: tests below)
    monkeypatch.setattr(cpu_facts, "cpu_flags", lambda: {"avx512_vnni"})
    monkeypatch.setattr(cpu_path, "MIN_INT8_AGREEMENT", 0.9)
    source = tmp_path / "reviews.parquet"
    pq.write_table(pq.read_table(nsmc_path).slice(1000, 300), source)
    assert main(["label", "--model", str(folder), "--input", str(source), "--output", str(tmp_path / "out"),
                 "--engine", "local", "--threads-per-actor", "1", "--no-progress"]) == 0
    [path] = [actor["path"] for actor in json.loads((tmp_path / "out" / "_SUCCESS").read_text())["runs"][0]["actors"]]
    assert path["runtime"] == "openvino" and path["precision"] == "int8" and path["forward_batch_size"] == 128
    assert path["runs_in"] == record["check"]["runs_in"]  # the float precision the check ran in, on this CPU
    assert path["passes_at_once"] == 1  # one thread: one pass at a time
    assert path["why"].startswith(f"auto: no AMX on this CPU, and the model's openvino-int8/ export kept "
                                  f"{record['check']['label_agreement']:.2%}")
    assert f"  path        openvino int8, {path['runs_in']} around it on cpu (auto:" in capsys.readouterr().out


def test_auto_measures_the_paths_once_per_machine_and_labels_with_the_fastest(with_both_exports, nsmc_path,
                                                                              tmp_path, monkeypatch, capsys):
    """With two usable int8 exports `auto` times both on this CPU (kobert_ops.path_trial), labels with the faster
    (the flags' order breaks a near-tie) and says so; later runs read the kept result; an export written again is
    measured again."""
    from kobert_ops import path_trial

    folder, _ = with_both_exports
    monkeypatch.setenv("KOBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_facts, "has_amx", lambda: False)
    monkeypatch.setattr(cpu_path, "MIN_INT8_AGREEMENT", 0.5)
    source = tmp_path / "reviews.parquet"
    pq.write_table(pq.read_table(nsmc_path).slice(1000, 100), source)
    assert main(["label", "--model", str(folder), "--input", str(source), "--output", str(tmp_path / "out"),
                 "--engine", "local", "--threads-per-actor", "1", "--no-progress"]) == 0
    [kept] = (tmp_path / "cache" / "path-trials").glob("*.json")
    trial = json.loads(kept.read_text())
    assert set(trial["ids_per_s"]) == {"openvino-int8", "onnx-int8"} and min(trial["ids_per_s"].values()) > 0
    order = [cpu_path.INT8_EXPORTS[kind] for kind in cpu_path.export_order()]
    assert trial["chosen"] == path_trial.decide(trial["ids_per_s"], order) and trial["threads"] == 1
    [path] = [actor["path"] for actor in json.loads((tmp_path / "out" / "_SUCCESS").read_text())["runs"][0]["actors"]]
    assert cpu_path.INT8_EXPORTS[path["runtime"]] == trial["chosen"]
    assert path["why"].startswith("auto: the fastest path measured on this CPU (") and \
        f"; the model's {trial['chosen']}/ export kept " in path["why"]
    assert "(auto: the fastest path measured on this CPU" in capsys.readouterr().out

    def measured_again(*args):
        raise AssertionError("measured again")

    monkeypatch.setattr(path_trial, "measure", measured_again)
    _, again = cpu_path.load_predictor(str(folder), threads=1)
    assert again["why"] == path["why"]  # the kept result, not a new measurement
    rewritten = tmp_path / "rewritten"
    shutil.copytree(folder, rewritten)
    export_json = rewritten / "onnx-int8" / "export.json"
    export_json.write_text(json.dumps({**json.loads(export_json.read_text()), "model_sha256": "0" * 64}))
    with pytest.raises(AssertionError, match="measured again"):
        cpu_path.load_predictor(str(rewritten), threads=1)


def test_with_the_trial_off_or_one_path_auto_keeps_the_flags_rule(with_both_exports, with_export, tmp_path,
                                                                  monkeypatch):
    folder, _ = with_both_exports
    monkeypatch.setenv("KOBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_facts, "has_amx", lambda: False)
    monkeypatch.setattr(cpu_path, "MIN_INT8_AGREEMENT", 0.5)
    monkeypatch.setenv("KOBERT_PATH_TRIAL", "off")
    _, path = cpu_path.load_predictor(str(folder), threads=1)
    assert path["why"].startswith("auto: no AMX on this CPU, and the model's ")
    monkeypatch.delenv("KOBERT_PATH_TRIAL")
    only_onnx, _ = with_export  # one usable path: nothing to measure
    _, path = cpu_path.load_predictor(str(only_onnx), threads=1)
    assert path["runtime"] == "onnx" and path["why"].startswith("auto: no AMX on this CPU, and the model's onnx-int8/")
    assert not list((tmp_path / "cache").glob("path-trials/*.json"))


def test_on_an_amx_cpu_pytorch_is_measured_against_the_int8_export(with_export, tmp_path, monkeypatch):
    """On AMX PyTorch bf16 was the measured fast path, but never against an int8 export: there both are timed."""
    folder, _ = with_export
    monkeypatch.setenv("KOBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_facts, "has_amx", lambda: True)
    monkeypatch.setattr(cpu_path, "MIN_INT8_AGREEMENT", 0.5)
    predictor, path = cpu_path.load_predictor(str(folder), threads=1, auto_bf16="bf16-full")
    [kept] = (tmp_path / "cache" / "path-trials").glob("*.json")
    trial = json.loads(kept.read_text())
    assert set(trial["ids_per_s"]) == {"onnx-int8", "torch"} and trial["cpu"]["amx"] is True
    assert path["runtime"] == ("torch" if trial["chosen"] == "torch" else "onnx")
    if path["runtime"] == "torch":
        assert path["why"].endswith(f"; PyTorch on this CPU's AMX tiles ({predictor.reason})")
    # the start-up's warm-up guess follows the kept result (on AMX it imported torch whatever the trial had found)
    for chosen, warmed in [("onnx-int8", "onnx"), ("torch", "")]:
        kept.write_text(json.dumps({**trial, "chosen": chosen}))
        assert cpu_path.may_use_export(str(folder), "auto", "auto", "cpu", threads=1) == warmed
    assert cpu_path.may_use_export(str(folder), "auto", "auto", "cpu", threads=2) == ""  # no trial kept for 2


def test_an_int8_check_holds_on_the_kernels_that_add_its_products_alike(with_both_exports, tmp_path, monkeypatch):
    """AVX2's int8 products (no VNNI) add pairs in 16 bits, which saturate with 8-bit weights (counted on the
    benchmark's base model's ONNX Runtime graph with 8-bit weights: 8,051 pair sums on 500 reviews, touching
    nearly every review); VNNI and AMX add in 32 bits, alike. So on an AVX2 CPU `auto` takes an export checked
    on VNNI or AMX kernels only where its products cannot saturate (ONNX Runtime's, whose weights fit 7 bits:
    `saturation_free`) or where it was checked on AVX2 kernels too (OpenVINO's: the next test); an export
    without either (OpenVINO's from earlier releases) is not taken there, and the reason says why. Where the
    check ran on AVX2 kernels and this CPU runs exact ones, the reason says so."""
    folder, record = with_both_exports
    assert record["check"]["cpu"] == {"model": cpu_facts.cpu_model(), "int8_kernels": cpu_facts.int8_kernels()}
    elsewhere = tmp_path / "model"
    shutil.copytree(folder, elsewhere)

    def checked_on(kind: str, kernels: str) -> dict:
        """The export's record as if its check had run on `kernels`, without a check on AVX2 kernels (as made
        by an earlier release)."""
        export_json = elsewhere / cpu_path.INT8_EXPORTS[kind] / "export.json"
        written = json.loads(export_json.read_text())
        written["check"]["cpu"] = {"model": f"a {kernels} CPU", "int8_kernels": kernels}
        written["check"].pop("on_avx2_kernels", None)
        export_json.write_text(json.dumps(written))
        return written

    monkeypatch.setattr(cpu_path, "MIN_INT8_AGREEMENT", 0.5)
    monkeypatch.setattr(cpu_path, "export_order", lambda: ["openvino", "onnx"])
    onnx_record = checked_on("onnx", "VNNI")
    assert onnx_record["quantization"]["saturation_free"] is True
    checked_on("openvino", "VNNI")
    monkeypatch.setattr(cpu_facts, "cpu_flags", lambda: {"amx_int8", "avx2"})  # AMX adds in 32 bits, as VNNI
    export, why = cpu_path.int8_export_for(str(elsewhere), elsewhere, "cpu", "auto")
    assert export == elsewhere / "openvino-int8" and "int8 kernels" not in why
    monkeypatch.setattr(cpu_facts, "cpu_flags", lambda: {"avx2"})
    usable, _ = cpu_path.usable_exports(str(elsewhere), elsewhere, "cpu", "auto")
    assert [kind for kind, _, _ in usable] == ["onnx"]  # the OpenVINO export gives way
    assert "int8 kernels" not in usable[0][2]  # the ONNX Runtime export's check holds on AVX2 kernels as made
    shutil.rmtree(elsewhere / "onnx-int8")
    export, why = cpu_path.int8_export_for(str(elsewhere), elsewhere, "cpu", "auto")
    assert export is None and why == ("openvino-int8/ was checked on VNNI int8 kernels only: this CPU's AVX2 ones "
                                      "add its products in 16-bit pairs, which saturate (export it again with this "
                                      "release, which checks it on AVX2 kernels too)")
    checked_on("openvino", "AVX2")  # made on an AVX2 CPU, run on a VNNI one: the reason says so
    monkeypatch.setattr(cpu_facts, "cpu_flags", lambda: {"avx512_vnni", "avx2"})
    export, why = cpu_path.int8_export_for(str(elsewhere), elsewhere, "cpu", "auto")
    assert export == elsewhere / "openvino-int8"
    assert (f"on {record['check']['rows']:,} reviews with AVX2 int8 kernels (this CPU runs VNNI ones: export it "
            f"again here to check those): ") in why
    monkeypatch.setattr(cpu_facts, "cpu_flags", lambda: None)  # no /proc/cpuinfo: nothing known to compare
    assert "int8 kernels" not in cpu_path.int8_export_for(str(elsewhere), elsewhere, "cpu", "auto")[1]


def test_on_an_avx2_cpu_auto_judges_an_export_by_its_check_on_avx2_kernels(with_both_exports, tmp_path,
                                                                         monkeypatch):
    """Where the export's check also ran on AVX2 kernels (oneDNN held to AVX2 at export), an AVX2-only CPU judges
    it by that: the benchmark's model kept 99.50% on VNNI kernels and 99.35% on AVX2 ones, below the floor, so
    `auto` must not label with it there. CPUs with VNNI judge by the check on their own kernels."""
    folder, _ = with_both_exports
    elsewhere = tmp_path / "model"
    shutil.copytree(folder, elsewhere)
    shutil.rmtree(elsewhere / "onnx-int8")  # the OpenVINO export alone
    export_json = elsewhere / "openvino-int8" / "export.json"
    record = json.loads(export_json.read_text())
    rows = record["check"]["rows"]

    def checked(on_vnni: float, on_avx2: float | None) -> None:
        check = {**record["check"], "label_agreement": on_vnni, "cpu": {"model": "a VNNI CPU", "int8_kernels": "VNNI"}}
        check.pop("on_avx2_kernels", None)
        if on_avx2 is not None:
            check["on_avx2_kernels"] = {"rows": rows, "label_agreement": on_avx2, "runs_in": "f32",
                                        "how": "ONEDNN_MAX_CPU_ISA=AVX2", "cpu": "a VNNI CPU"}
        export_json.write_text(json.dumps({**record, "check": check}))

    monkeypatch.setattr(cpu_facts, "cpu_flags", lambda: {"avx2"})
    checked(0.999, 0.99)
    export, why = cpu_path.int8_export_for(str(elsewhere), elsewhere, "cpu", "auto")
    assert export is None
    assert why == (f"openvino-int8/ kept 99.00% of PyTorch fp32's labels on AVX2 int8 kernels (its check held to "
                   f"them on a VNNI CPU), below 99.5%")
    checked(0.999, 0.998)
    export, why = cpu_path.int8_export_for(str(elsewhere), elsewhere, "cpu", "auto")
    assert export == elsewhere / "openvino-int8"
    assert (f"the model's openvino-int8/ export kept 99.80% of PyTorch fp32's labels on {rows:,} reviews on AVX2 "
            f"int8 kernels (its check held to them on a VNNI CPU): ") in why
    monkeypatch.setattr(cpu_facts, "cpu_flags", lambda: {"avx512_vnni", "avx2"})  # its own kernels' check holds
    checked(0.999, 0.99)
    export, why = cpu_path.int8_export_for(str(elsewhere), elsewhere, "cpu", "auto")
    assert export == elsewhere / "openvino-int8" and "99.90%" in why and "AVX2" not in why


def test_the_weights_digest_is_kept_only_while_the_files_stay_the_same(tmp_path):
    """A label run hashes the weights once (its warm-up thread, then `auto`'s check); a folder trained again
    in the same process (new bytes, a new modification time) gets a new digest, so a stale export is refused."""
    import hashlib
    import os

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * 1000)
    first = cpu_path.weights_sha256(tmp_path)
    assert first == hashlib.sha256(b"a" * 1000).hexdigest() == cpu_path.weights_sha256(tmp_path)
    stat = weights.stat()
    weights.write_bytes(b"b" * 1000)  # the same size, written again
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert cpu_path.weights_sha256(tmp_path) == hashlib.sha256(b"b" * 1000).hexdigest()
    (tmp_path / "extra.bin").write_bytes(b"c")
    assert cpu_path.weights_sha256(tmp_path) == hashlib.sha256(b"b" * 1000 + b"c").hexdigest()
