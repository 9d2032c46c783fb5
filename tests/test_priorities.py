"""The durable-solutions lens: IASC criteria and priority classes (stability.priorities)."""

from __future__ import annotations

import pytest

from stability import priorities as pr
from stability.exceptions import SpecError
from stability.pipeline import compute
from stability.report import priorities as rp
from stability.report.context import ReportContext
from stability.spec import IASC_CRITERIA, iter_options

TAGS = {"a": "safety_security", "b": "standard_of_living", "c": "documentation"}
#        a, b, c           index  category  people                        cercle  region
ROWS = [([0, 0, 0],    ),   # L000    0   low       150 returnees                 C1      R1
        ([10, 10, 10], ),   # L001  100   high      200 IDPs                      C1      R1
        ([10, 10, 10], ),   # L002  100   high      50 IDPs; 600 in low C2        C2      R2
        ([0, 0, 0],    ),   # L003    0   low       600 IDPs, 10 returnees        C2      R1
        ([5, 5, 5],    ),   # L004   50   medium    20 IDPs                       C2      R2
        ([10, 10, 10], )]   # L005  100   high      nobody                        C3      R2
PEOPLE = dict(idps=[0, 200, 50, 600, 20, 0], returnees=[150, 0, 0, 10, 0, 0],
              population=[1000, 1000, 1000, 1000, 1000, 1000],
              region=["R1", "R1", "R2", "R1", "R2", "R2"], cercle=["C1", "C1", "C2", "C2", "C2", "C3"])


@pytest.fixture(scope="module")
def small(make_spec, make_frame):
    def build(**priorities):
        spec = make_spec(admin=["region", "cercle"],
                         indicator_options={k: {"iasc": v} for k, v in TAGS.items()},
                         **({"priorities": priorities} if priorities else {}))
        data = make_frame([r[0] for r in ROWS], **PEOPLE)
        return compute(data, spec, check=False)

    return build


def _classes(result):
    t = pr.classify(result)
    return dict(zip(t["loc"], t["class_id"])), t


def test_classes_follow_the_rule(small):
    res = small()
    assert list(res.scores["category"]) == ["low", "high", "high", "low", "medium", "high"]
    got, table = _classes(res)
    assert got == {"L000": "urgent_return", "L001": "local_integration", "L002": "candidate_return",
                   "L003": "monitor", "L004": "monitor", "L005": "no_displaced"}
    assert list(table["nearby_low_idps"]) == [0, 0, 600, 600, 600, 0]
    assert list(table["class"])[0] == "Urgent conditions for return"
    assert {"idps", "returnees", "population", "category", "reason", "criteria_met", "criteria_unmet"} <= set(table)


def test_reasons_name_the_numbers_and_unmet_criteria(small):
    _, t = _classes(small())
    r = dict(zip(t["loc"], t["reason"]))
    assert r["L000"] == ("Urgent conditions for return: 150 returnees in a low-stability location; unmet: "
                         "long-term safety, security and freedom of movement; adequate standard of living; "
                         "access to documentation")
    assert r["L001"].startswith("Local integration opportunity: 200 IDPs in a high-stability location")
    assert r["L001"].endswith("no IASC criterion unmet")
    assert "600 IDPs hosted in low-stability locations of the same cercle" in r["L002"]
    assert r["L003"].startswith("Monitor: 600 IDPs and 10 returnees in a low-stability location; unmet:")
    assert r["L005"].startswith("No displaced people")
    row = t.set_index("loc")
    assert row.at["L000", "criteria_unmet"] == ["safety_security", "standard_of_living", "documentation"]
    assert row.at["L001", "criteria_met"] == ["safety_security", "standard_of_living", "documentation"]
    assert row.at["L004", "criteria_met"] == [] and len(row.at["L004", "criteria_partly"]) == 3


def test_not_measured_criteria_are_reported(small):
    res = small()
    t = pr.classify(res)
    missing = [c for c in IASC_CRITERIA if c not in TAGS.values()]
    assert all(lst == missing for lst in t["criteria_not_measured"])
    by = pr.criteria_by(res, None, by="region")
    assert len(by) == 2 * len(IASC_CRITERIA)  # every criterion for every region, measured or not
    nm = by[by["criterion"] == "family_reunification"]
    assert set(nm["status"]) == {pr.NOT_MEASURED} and set(nm["indicators"]) == {"none"}
    assert set(pr.criteria(res)["hlp"]) == {pr.NOT_MEASURED}


def test_thresholds_from_the_spec_are_honoured(small):
    assert pr.thresholds(small().spec) == (0.6, 0.4)  # default: the category cut-offs
    got, _ = _classes(small(returnees=200))
    assert got["L000"] == "monitor"
    got, _ = _classes(small(returnees=1000, returnee_share=0.1))  # 150 of 1,000 residents
    assert got["L000"] == "urgent_return"
    got, _ = _classes(small(idps=300))
    assert got["L001"] == "monitor"
    got, _ = _classes(small(nearby_idps=601))
    assert got["L002"] == "monitor"
    got, _ = _classes(small(nearby="region"))  # L002's region R2 has no low-stability location
    assert got["L002"] == "monitor" and got["L001"] == "local_integration"
    with pytest.raises(SpecError, match="priorities.nearby"):
        pr.classify(small(nearby="district"))
    t = pr.classify(small(met=0.4, unmet=0.3))
    assert t.set_index("loc").at["L004", "criteria_met"] == list(TAGS.values())
    assert "region" in pr.rule_text(small(nearby="region").spec)
    assert "at least 200 returnees" in pr.rule_text(small(returnees=200).spec)


def test_summary_counts_people_per_class_and_region(small):
    s = pr.summary(small(), None, by="region")
    assert len(s) == 2 * len(pr.CLASSES)
    r1 = s[s["region"] == "R1"].set_index("class_id")
    assert r1.at["urgent_return", "returnees"] == 150 and r1.at["monitor", "idps"] == 600
    assert s["locations"].sum() == len(ROWS)
    assert s.groupby("class_id")["idps"].sum()["local_integration"] == 200


def test_report_tables(small):
    res = small()
    ctx = ReportContext(result=res, round=None, previous_round=None, region="R1", region_name="Region 1",
                        regions={"R1": "Region 1", "R2": "Region 2"})
    table = rp.priorities_table(ctx)
    assert list(table["Class"]) == [pr.CLASSES[k] for k in ("urgent_return", "local_integration", "monitor")]
    assert "150 returnees" in table["Reason"].iloc[0]
    assert set(rp.class_summary(ctx)["Class"]) == set(pr.CLASSES.values())
    crit = rp.criteria_table(ctx)
    assert len(crit) == len(IASC_CRITERIA) and (crit["Status"] == pr.NOT_MEASURED).sum() == 5
    assert any("not measured" in s for s in rp.criteria_sentences(ctx))
    assert "first class whose rule holds" in rp.rule_sentence(ctx)
    sheets = rp.workbook_sheets(ctx)
    assert set(sheets) == {"Priorities", "Priority classes", "IASC criteria", "Priority rule"}
    assert len(sheets["Priorities"]) == 3  # every location of the region, including those without displaced


def test_every_mali_indicator_is_tagged(mali_spec):
    for ind in mali_spec.indicators:
        assert ind.iasc is not None, ind.id
        if ind.iasc == pr.UNTAGGED:
            assert ind.iasc_note, f"{ind.id} is untagged without a reason"
    tags = pr.tags(mali_spec).set_index("indicator")["criterion"]
    assert tags["id_documents"] == "documentation" and tags["illegal_occupation_hlp"] == "hlp"
    assert tags["participation_public_affairs"] == "participation"
    assert tags["armed_groups_present"] == "safety_security" and tags["drinking_water"] == "standard_of_living"
    assert tags["farmland_access"] == "livelihoods"


def test_priorities_options_are_walked_and_change_no_number(mali_spec):
    steps = {p: s for p, _, s in iter_options(mali_spec) if p.startswith("priorities.") or p.endswith(".iasc")}
    assert "priorities.nearby_idps" in steps and "indicators.id_documents.iasc" in steps
    assert set(steps.values()) == {"ranked"}


def test_mali_classification(mali_result):
    last = mali_result.rounds[-1]
    t = pr.classify(mali_result, last)
    assert len(t) == (mali_result.scores["round"] == last).sum()
    assert t["reason"].str.len().gt(0).all() and set(t["class_id"]) <= set(pr.CLASSES)
    assert pr.classify(mali_result, last).equals(t)  # deterministic
    s = pr.summary(mali_result, last)
    assert s["locations"].sum() == len(t)
