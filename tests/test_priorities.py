"""The durable-solutions lens: IASC criteria and priority classes (stability.priorities)."""

from __future__ import annotations

import re

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
    def build(people=None, **priorities):
        spec = make_spec(indicator_options={k: {"iasc": v} for k, v in TAGS.items()},
                         columns={"location": "loc", "round": None, "admin": ["region", "cercle"],
                                  "admin_names": ["region_name", "cercle_name"]},
                         **({"priorities": priorities} if priorities else {}))
        people = {**PEOPLE, **(people or {})}
        data = make_frame([r[0] for r in ROWS], **people, region_name=people["region"],
                          cercle_name=[f"Area {c}" for c in people["cercle"]])
        return compute(data, spec, check=False)

    return build


def _ctx(result, region, regions=None):
    regions = regions or {r: r for r in sorted(set(result.scores["region"]))}
    return ReportContext(result=result, round=None, previous_round=None, region=region,
                         region_name=regions.get(region, "all regions"), regions=regions)


def _classes(result):
    t = pr.classify(result)
    return dict(zip(t["loc"], t["class_id"])), t


def test_classes_follow_the_rule(small):
    res = small()
    assert list(res.scores["category"]) == ["low", "high", "high", "low", "medium", "high"]
    got, table = _classes(res)
    assert got == {"L000": "urgent_return", "L001": "local_integration", "L002": "candidate_return",
                   "L003": "displaced_low", "L004": "monitor", "L005": "no_displaced"}
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
    assert r["L003"].startswith("Displaced in low stability: 600 IDPs in a low-stability location (neither return "
                                "nor local integration there: assistance and protection); unmet:")
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
    assert r1.at["urgent_return", "returnees"] == 150 and r1.at["displaced_low", "idps"] == 600
    assert s["locations"].sum() == len(ROWS)
    assert s.groupby("class_id")["idps"].sum()["local_integration"] == 200


def test_report_tables(small):
    res = small()
    ctx = ReportContext(result=res, round=None, previous_round=None, region="R1", region_name="Region 1",
                        regions={"R1": "Region 1", "R2": "Region 2"})
    table = rp.priorities_table(ctx)
    assert list(table["Class"]) == [pr.CLASSES[k] for k in ("urgent_return", "local_integration", "displaced_low")]
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


# --------------------------------------------------------------------------- words for readers
def test_counts_of_one_are_singular(small):
    """"it hosts 1 IDPs" was the reason of a Niger location: one IDP, one returnee, in every sentence."""
    res = small(people={"idps": [0, 200, 1, 600, 1, 0], "returnees": [150, 0, 0, 1, 0, 0]})
    _, t = _classes(res)
    r = dict(zip(t["loc"], t["reason"]))
    assert "(it hosts 1 IDP and 0 returnees)" in r["L002"]
    assert r["L003"].startswith("Displaced in low stability: 600 IDPs in a low-stability location")
    few = pr.classify(small(people={"idps": [0, 200, 1, 1, 1, 0], "returnees": [150, 0, 0, 1, 0, 0]}))
    assert few.set_index("loc").at["L003", "reason"].startswith("Monitor: 1 IDP and 1 returnee in a low-stability")
    assert r["L004"].startswith("Monitor: 1 IDP and 0 returnees in a medium-stability location")
    assert not any(re.search(r"\b1 (IDPs|returnees)\b", x) for x in t["reason"])
    one = small(people={"idps": [0, 200, 0, 1, 0, 0]}, nearby_idps=1, returnees=1, idps=1)
    assert "with 1 IDP hosted in low-stability locations" in pr.classify(one).set_index("loc").at["L002", "reason"]
    rule = pr.rule_text(one.spec)
    assert "at least 1 returnee in" in rule and "at least 1 IDP in" in rule and "hosts at least 1 IDP in" in rule
    assert "at least 500 IDPs in" in pr.rule_text(small().spec)


@pytest.mark.parametrize("codes, word", [(("ML05", "ML06"), "cercle"), (("BF56", "BF54"), "province"),
                                          (("NE006", "NE005"), "department")])
def test_admin2_areas_are_named_in_the_words_of_the_country(small, codes, word):
    """Burkina Faso and Niger reports spoke of cercles: the rule, the table, the reasons and the workbook."""
    res = small(people={"region": [codes[0] if r == "R1" else codes[1] for r in PEOPLE["region"]]})
    assert f"low-stability locations of the same {word} (it hosts" in pr.classify(res).set_index("loc").at[
        "L002", "reason"]
    ctx = _ctx(res, codes[1])
    assert f"location whose {word} hosts at least 500 IDPs" in rp.rule_sentence(ctx)
    table = rp.priorities_table(ctx, top=None, include_none=True)
    assert word.capitalize() in table.columns and word.capitalize() in rp.workbook_sheets(ctx)["Priorities"].columns
    assert all(f"same {word}" in x for x in table.loc[table["Class"] == pr.CLASSES["candidate_return"], "Reason"])
    if word != "cercle":
        assert "Cercle" not in table.columns and "cercle" not in rp.rule_sentence(ctx)
        assert not table["Reason"].str.contains("cercle").any()


def test_an_overview_of_several_countries_uses_a_neutral_word(small):
    # L002 (the candidate area of return) is in Niger, its cercle-mates L003 in Burkina Faso, L004 in Niger
    res = small(people={"region": ["BF56" if r == "R1" else "NE006" for r in PEOPLE["region"]]})
    ctx = _ctx(res, None)
    assert "location whose admin-2 area (province or department) hosts at least 500 IDPs" in rp.rule_sentence(ctx)
    sheet = rp.workbook_sheets(ctx)["Priorities"]
    assert "Admin-2 area" in sheet.columns and "Cercle" not in sheet.columns
    reasons = dict(zip(sheet["Location id"], sheet["Reason"]))
    assert "same department" in reasons["L002"]  # each location in the words of its own country
    # Mali alone: still cercles
    mali = small(people={"region": ["ML05" if r == "R1" else "ML06" for r in PEOPLE["region"]]})
    assert "whose cercle hosts" in rp.rule_sentence(_ctx(mali, None))
    assert "Cercle" in rp.priorities_table(_ctx(mali, None)).columns


def test_the_table_says_how_many_locations_it_shows(small, mali_result):
    ctx = _ctx(small(idps=700), None)  # monitor: L001 (200 IDPs), L003 (600 IDPs, 10 returnees) and L004
    assert rp.table_note(ctx) is None  # every location with displaced people is shown
    note = rp.table_note(ctx, top=1)
    assert len(rp.priorities_table(ctx, top=1)) == 3  # one per class with displaced people
    assert "at most 1 location per class" in note and "monitor, 1 of 3 (most IDPs and returnees first)" in note
    assert "candidate area of return, 1 of 1;" in note
    assert "All 6 locations of all regions" in note and "\u201cPriorities\u201d sheet" in note
    assert "rankings.xlsx" in note
    # Mopti: 10 shown of each class with more
    from stability.report.context import context_for

    mopti = context_for(mali_result, "ML05", "latest", geo={})
    counts = rp.classified(mopti)["class_id"].value_counts()
    note = rp.table_note(mopti)
    for k in ("local_integration", "candidate_return", "monitor"):
        assert counts[k] > rp.TOP_PER_CLASS
        assert f"{pr.CLASSES[k].lower()}, {rp.TOP_PER_CLASS} of {counts[k]:,} (most" in note
    assert f"All {len(rp.classified(mopti)):,} locations of Mopti" in note


def test_the_overview_has_the_classes_per_region(small):
    res = small()
    ctx = _ctx(res, None, {"R1": "Region 1", "R2": "Region 2"})
    table = rp.class_by_region(ctx)
    assert list(table.columns) == ["Region", *pr.CLASSES.values(), "All locations", "P-code"]
    assert list(table["Region"]) == ["Region 1", "Region 2", "Total"] and list(table["P-code"]) == ["R1", "R2", ""]
    s = pr.summary(res, None, by="region").pivot(index="region", columns="class_id", values="locations")
    for code, row in table.set_index("P-code").drop("").iterrows():
        assert [row[pr.CLASSES[k]] for k in pr.CLASSES] == [s.at[code, k] for k in pr.CLASSES]
    total = table.set_index("Region").loc["Total"]
    assert total["All locations"] == len(ROWS) and total[pr.CLASSES["monitor"]] == 1
    assert total[pr.CLASSES["displaced_low"]] == 1
    assert (table[list(pr.CLASSES.values())].iloc[:-1].sum(axis=1) == table["All locations"].iloc[:-1]).all()
    assert rp.REGION_SHEET in rp.workbook_sheets(ctx)
    region = _ctx(res, "R1", {"R1": "Region 1", "R2": "Region 2"})
    assert rp.class_by_region(region) is None and rp.REGION_SHEET not in rp.workbook_sheets(region)


def test_the_overview_gives_each_region_s_criteria_as_its_report_does(small):
    """The overview's criteria are of all locations pooled, and says so; its table by region gives each region
    the status its own report gives."""
    res = small()
    regions = {"R1": "Region 1", "R2": "Region 2"}
    overview = _ctx(res, None, regions)
    lines = rp.criteria_sentences(overview)
    assert lines and all(not x.startswith("In all regions") for x in lines)
    assert lines[0].startswith("Across all regions pooled, these IASC criteria")
    table = rp.criteria_by_region(overview)
    assert list(table["Region"]) == ["Region 1", "Region 2"] and list(table["P-code"]) == ["R1", "R2"]
    for code in regions:
        own = rp.criteria_table(_ctx(res, code, regions))
        own = own[own["Status"] != pr.NOT_MEASURED].set_index("Criterion")["Status"]
        row = table.set_index("P-code").loc[code]
        assert {k: row[k] for k in own.index} == own.to_dict(), code
    assert "IASC criteria by region" in rp.workbook_sheets(overview)
    assert rp.criteria_by_region(_ctx(res, "R1", regions)) is None
