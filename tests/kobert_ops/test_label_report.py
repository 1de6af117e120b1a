"""A labeling run's report: drawn by the helper process the run starts early, or in the run's own process when
that helper cannot do it; never a stray process left behind."""

import json
import subprocess

from kobert_ops import label_report
from kobert_ops.label_report import ReportProcess

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIELDS = dict(run_id="20261207T000000Z-abc123", counts={"긍정": 1800, "부정": 1190},
              score_histograms={"긍정": [0] * 10 + [5] * 10, "부정": [3] * 20}, reasons={"empty text": 10},
              truncated=4, seconds=12.5, model="models/nsmc", model_version="nsmc-0123456789ab")


def assert_report(folder):
    assert (folder / "label_distribution.png").read_bytes().startswith(PNG_MAGIC)
    stats = json.loads((folder / "label_stats.json").read_text())
    assert stats["labeled"] == 2990 and stats["rejected"] == 10 and stats["label_counts"]["부정"] == 1190
    assert "| 긍정 | 1,800 |" in (folder / "report.md").read_text()


def test_the_helper_process_writes_the_report_and_is_gone_after(tmp_path, monkeypatch):
    called = []
    monkeypatch.setattr(label_report, "write_label_report", lambda *a, **k: called.append(a))
    report = ReportProcess()
    helper = report.process
    report.write(tmp_path / "report", **FIELDS)
    assert not called  # (drawn in the helper: this process's writer was never called)
    assert_report(tmp_path / "report")
    assert helper.poll() is not None  # ended and reaped once it has written


def test_a_failing_helper_leaves_the_report_to_this_process(tmp_path, monkeypatch):
    popen = subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen", lambda command, **options: popen(
        [command[0], "-c", "import sys; sys.stdin.readline(); sys.exit(3)"], **options))
    report = ReportProcess()
    report.write(tmp_path / "report", **FIELDS)
    assert_report(tmp_path / "report")


def test_a_helper_that_cannot_start_leaves_the_report_to_this_process(tmp_path, monkeypatch):
    def cannot_start(*args, **kwargs):
        raise OSError("no such interpreter")

    monkeypatch.setattr(subprocess, "Popen", cannot_start)
    ReportProcess().write(tmp_path / "report", **FIELDS)
    assert_report(tmp_path / "report")


def test_a_helper_never_asked_is_ended(tmp_path):
    report = ReportProcess()
    helper = report.process
    report.close()
    assert helper.poll() is not None and report.process is None
    report.close()  # twice: nothing left to do


def test_the_helper_runs_this_process_code_not_what_its_working_folder_holds(tmp_path, monkeypatch):
    """Started from a folder holding some other `kobert_ops` (another checkout, or planted), the helper still
    imports the code this process runs."""
    decoy = tmp_path / "cwd" / "kobert_ops"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy was imported')\n")
    monkeypatch.chdir(decoy.parent)
    called = []
    monkeypatch.setattr(label_report, "write_label_report", lambda *a, **k: called.append(a))
    ReportProcess().write(tmp_path / "report", **FIELDS)
    assert not called
    assert_report(tmp_path / "report")
