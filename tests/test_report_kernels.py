"""Pre-warmed kernels fall back to ordinary kernels, with one warning, when jupyter_client's hook changes.

:class:`stability.report.kernels.ForkingKernelManager` overrides a private hook
of jupyter_client (``AsyncKernelManager._async_pre_start_kernel``).  Here the
hook is taken away, given another signature, or made to raise; every report
must still be built, and the run must say once why its kernels were slower.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager, KernelManager

from stability.report import kernels, runner, worker

HOOK = "_async_pre_start_kernel"
ORIGINAL = getattr(KernelManager, HOOK)


@pytest.fixture(autouse=True)
def fresh_kernel_state(monkeypatch):
    """Each test starts with pre-warmed kernels on and unchecked in this process, and leaves them so."""
    monkeypatch.delenv("STABILITY_PREFORK", raising=False)
    monkeypatch.setattr(kernels, "_OFF", None)
    monkeypatch.setattr(kernels, "_OFF_PID", -1)
    monkeypatch.setattr(kernels, "_CHECKED_PID", -1)
    monkeypatch.setattr(kernels, "_WARNINGS", [])


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """Two one-cell notebooks with the report parameters: fast to run, enough to start a kernel."""
    folder = tmp_path_factory.mktemp("tiny_notebooks")
    params = {"regional_report": 'region = "ML05"\n', "country_overview": ""}
    for name, extra in params.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        cell = nbformat.v4.new_code_cell(extra + 'survey_round = "latest"\nspec_path = ""\ndata_path = ""\n'
                                         'output_dir = ""\ncache_path = ""')
        cell.metadata["tags"] = ["parameters"]
        nb.cells = [cell, nbformat.v4.new_code_cell("import os\nprint(os.getpid())")]
        nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


@pytest.fixture(scope="module")
def job(templates, tmp_path_factory):
    jobs, _ = runner.plan_jobs(region="ML08", all_regions=False, out_root=tmp_path_factory.mktemp("out"),
                               templates=templates)
    return replace(jobs[0], prefork=True)


def _fell_back(outcome) -> bool:
    return outcome.status == "ok" and len(outcome.notes) == 1 and "pre-warmed kernels are off" in outcome.notes[0]


def test_the_installed_jupyter_client_offers_the_hook():
    assert kernels.problem() is None


def test_a_missing_hook_falls_back_to_ordinary_kernels(job, monkeypatch):
    with monkeypatch.context() as m:  # a jupyter_client without the hook, as seen when the worker checks it
        m.delattr(KernelManager, HOOK)
        assert "has no _async_pre_start_kernel()" in kernels.problem()
        assert kernels.check() is False
    outcome = worker.run_job(job)
    assert _fell_back(outcome), outcome
    assert "has no _async_pre_start_kernel()" in outcome.notes[0]


def test_a_hook_with_another_signature_falls_back(job, monkeypatch):
    async def changed(self, *args, **kw):  # e.g. a positional argument added upstream
        return await ORIGINAL(self, *args, **kw)

    monkeypatch.setattr(AsyncKernelManager, HOOK, changed)
    outcome = worker.run_job(job)
    assert _fell_back(outcome), outcome
    assert "another signature" in outcome.notes[0]


def test_a_hook_that_raises_falls_back_and_warns_once(templates, tmp_path, monkeypatch, caplog):
    from test_report_rounds import partial_survey  # round 3: one region and the overview to build

    calls = []

    async def raising(self, **kw):
        if isinstance(self, kernels.ForkingKernelManager):
            calls.append(1)
            raise RuntimeError("the hook changed")
        return await ORIGINAL(self, **kw)

    monkeypatch.setattr(AsyncKernelManager, HOOK, raising)
    survey = partial_survey(tmp_path / "survey")
    with caplog.at_level(logging.WARNING, logger="stability.report"):
        batch = runner.build_reports(all_regions=True, survey_round=3, data_path=survey, out_root=tmp_path / "out",
                                     workers=1, templates=templates, progress=False)
    built = [o for o in batch.outcomes if o.status == "ok"]
    assert [o.name for o in built] == ["overview", "ML01"] and batch.ok
    assert calls == [1]  # tried once; the second report went straight to an ordinary kernel
    warnings = [r.getMessage() for r in caplog.records if "pre-warmed kernels are off" in r.getMessage()]
    assert len(warnings) == 1 and "RuntimeError: the hook changed" in warnings[0]
    assert warnings[0].startswith("stability: warning: ") and batch.notes == [warnings[0][len("stability: warning: "):]]


def test_forked_kernels_get_the_prompt_client():
    """The readiness check of forked kernels' clients drains IOPub without jupyter_client's 0.2 s wait."""
    from stability.report.kernels import ForkingKernelManager, PromptKernelClient

    km = ForkingKernelManager()
    assert km.client_factory is PromptKernelClient
    assert PromptKernelClient.DRAIN_TIMEOUT < 0.2
