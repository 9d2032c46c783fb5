"""The report cache: its key is checked, in a JSON sidecar, before anything is unpickled."""

from __future__ import annotations

import hashlib
import json
import os
import pickle

import pytest

from stability import __version__
from stability.report.context import key_path, load_cache, load_context, map_layers, save_cache


class SideEffect:
    """Unpickling this creates a folder: a visible sign that a pickle was loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.fixture(scope="module")
def saved(mali_result, tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "result.pkl"
    save_cache(path, mali_result, map_layers(mali_result))
    return path


def _key(result) -> dict:
    return {"data": result.data_version, "spec": result.spec_hash, "version": __version__}


def test_a_matching_cache_is_used(saved, mali_result):
    stored = json.loads(key_path(saved).read_text())
    assert key_path(saved).name == "result.key.json"
    assert stored == {**_key(mali_result), "sha256": hashlib.sha256(saved.read_bytes()).hexdigest()}
    payload = load_cache(saved, _key(mali_result))
    assert payload is not None and set(payload) == {"result", "geo", "tables"}
    assert payload["result"].spec_hash == mali_result.spec_hash
    assert len(payload["result"].scores) == len(mali_result.scores)


@pytest.mark.parametrize("case", ["pickle replaced", "sidecar for other data", "sidecar for another toolkit",
                                  "no sidecar", "sidecar not JSON"])
def test_a_tampered_or_mismatched_cache_is_never_unpickled(saved, mali_result, tmp_path, case):
    marker = tmp_path / "unpickled"
    evil = pickle.dumps(SideEffect(marker))
    path = tmp_path / "result.pkl"
    path.write_bytes(evil)
    digest = hashlib.sha256(evil).hexdigest()
    key = _key(mali_result)
    sidecar = key_path(path)
    if case == "pickle replaced":  # the sidecar of the real cache, beside another pickle
        sidecar.write_bytes(key_path(saved).read_bytes())
    elif case == "sidecar for other data":
        sidecar.write_text(json.dumps({**key, "data": "0000", "sha256": digest}))
    elif case == "sidecar for another toolkit":
        sidecar.write_text(json.dumps({**key, "version": "0.0.0", "sha256": digest}))
    elif case == "sidecar not JSON":
        sidecar.write_text("{not json")
    assert load_cache(path, key) is None
    assert not marker.exists()


def test_load_context_recomputes_rather_than_unpickle_a_stale_cache(saved, tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "result.pkl"
    path.write_bytes(pickle.dumps(SideEffect(marker)))
    key_path(path).write_bytes(key_path(saved).read_bytes())
    ctx = load_context(region="ML08", cache_path=path)
    assert not marker.exists()
    assert ctx.region_name == "Kidal" and len(ctx.current) > 0


def _same(a, b) -> None:
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            _same(a[k], b[k])
    elif hasattr(a, "equals"):
        assert a.equals(b), (a, b)
    else:
        assert a == b


@pytest.mark.parametrize("per_report", [False, True])
@pytest.mark.parametrize("region", [None, "ML05"])
def test_tables_shared_by_a_batch_give_the_same_report(mali_result, tmp_path, region, per_report):
    """The runner computes the tables of the whole round once for the batch (and, asked to, every report's
    own tables); a notebook that starts from them shows and writes exactly what it computes on its own."""
    from stability.report import content
    from stability.report import priorities as prio
    from stability.report.context import context_for, shared_tables

    geo = map_layers(mali_result)
    tables = shared_tables(mali_result, "latest", [None, "ML05", "ML02"], geo,
                           compute=content.prepare if per_report else None)
    assert tables["round"] == mali_result.rounds[-1] and set(tables["reports"]) == {"", "ML05", "ML02"}
    assert {"priorities", "pockets_found", "trends", "location_changes_all"} <= set(tables["round_tables"])
    path = save_cache(tmp_path / "result.pkl", mali_result, geo, tables)
    ctx = load_context(cache_path=path, region=region)
    assert {"priorities", "pockets_found"} <= set(ctx.round_tables)
    assert ("priorities" in ctx.precomputed) == per_report
    fresh = context_for(mali_result, region, "latest", geo)
    assert not fresh.precomputed
    for show in (prio.classified, prio.criteria_table, prio.class_summary, content.data_quality,
                 content.workbook_sheets):
        _same(show(ctx), show(fresh))
    if region is None:
        _same(content.league_table(ctx), content.league_table(fresh))
        _same(content.region_tests(ctx), content.region_tests(fresh))
    else:
        _same(content.drivers(ctx), content.drivers(fresh))
        assert content.driver_summaries(ctx, "least") == content.driver_summaries(fresh, "least")
    # tables of another round are never used
    earlier = load_context(cache_path=path, region=region, survey_round=mali_result.rounds[0])
    assert earlier.precomputed == {} and earlier.round_tables == {}
